//! `<backup>-resource-list.json.gz`: for each `<group/version>/<Kind>`, the sorted list of
//! `ns/name` (or `name` for cluster-scoped items) that the backup holds.

use std::collections::BTreeMap;

/// The resource list of one backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceList(BTreeMap<String, Vec<String>>);

/// The entry of one item: `ns/name`, or `name` when cluster-scoped.
pub fn item_key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

impl ResourceList {
    /// Records one item of kind `gvk_key` (`apps/v1/Deployment`).
    pub fn add(&mut self, gvk_key: &str, namespace: Option<&str>, name: &str) {
        self.0
            .entry(gvk_key.to_owned())
            .or_default()
            .push(item_key(namespace, name));
    }

    /// Sorts and de-duplicates every list, as Velero stores them.
    pub fn finish(mut self) -> BTreeMap<String, Vec<String>> {
        for v in self.0.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        self.0
    }

    /// Items recorded so far.
    pub fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_per_kind() {
        let mut l = ResourceList::default();
        l.add("v1/ConfigMap", Some("b"), "x");
        l.add("v1/ConfigMap", Some("a"), "y");
        l.add("v1/Namespace", None, "a");
        l.add("v1/ConfigMap", Some("a"), "y");
        insta::assert_json_snapshot!(l.finish(), @r#"
        {
          "v1/ConfigMap": [
            "a/y",
            "b/x"
          ],
          "v1/Namespace": [
            "a"
          ]
        }
        "#);
    }
}
