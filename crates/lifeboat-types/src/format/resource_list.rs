//! `<backup>-resource-list.json.gz`: for each `<group/version>/<Kind>`, the sorted list of
//! `ns/name` (or `name` for cluster-scoped items) that the backup holds.

use std::collections::BTreeMap;

/// The resource list of one backup. Keys are kept packed (one string buffer and offsets
/// per kind) so that a backup of 100k objects holds about 2 MiB here, not 10.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceList(BTreeMap<String, Packed>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Packed {
    buf: String,
    ends: Vec<u32>,
}

impl Packed {
    fn push(&mut self, namespace: Option<&str>, name: &str) {
        if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
            self.buf.push_str(ns);
            self.buf.push('/');
        }
        self.buf.push_str(name);
        self.ends.push(self.buf.len() as u32);
    }
}

/// A finished resource list: `<gvk>` → sorted `ns/name` keys, ready to serialise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortedResourceList(BTreeMap<String, (String, Vec<(u32, u32)>)>);

impl SortedResourceList {
    /// The sorted keys of one kind.
    pub fn keys<'a>(&'a self, gvk: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .get(gvk)
            .into_iter()
            .flat_map(|(buf, ranges)| ranges.iter().map(move |r| &buf[r.0 as usize..r.1 as usize]))
    }
}

impl serde::Serialize for SortedResourceList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Keys<'a>(&'a str, &'a [(u32, u32)]);
        impl serde::Serialize for Keys<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.1.iter().map(|r| &self.0[r.0 as usize..r.1 as usize]))
            }
        }
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, (buf, ranges)) in &self.0 {
            m.serialize_entry(k, &Keys(buf, ranges))?;
        }
        m.end()
    }
}

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
        match self.0.get_mut(gvk_key) {
            Some(p) => p.push(namespace, name),
            None => {
                let mut p = Packed::default();
                p.push(namespace, name);
                self.0.insert(gvk_key.to_owned(), p);
            }
        }
    }

    /// Sorts and de-duplicates every list, as Velero stores them. Sorting moves offsets,
    /// not strings; the result serialises straight from the packed buffers.
    pub fn finish(self) -> SortedResourceList {
        SortedResourceList(
            self.0
                .into_iter()
                .map(|(k, p)| {
                    let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(p.ends.len());
                    let mut start = 0u32;
                    for &e in &p.ends {
                        ranges.push((start, e));
                        start = e;
                    }
                    let key = |r: &(u32, u32)| &p.buf[r.0 as usize..r.1 as usize];
                    ranges.sort_unstable_by(|a, b| key(a).cmp(key(b)));
                    ranges.dedup_by(|a, b| key(a) == key(b));
                    (k, (p.buf, ranges))
                })
                .collect(),
        )
    }

    /// Items recorded so far.
    pub fn len(&self) -> usize {
        self.0.values().map(|p| p.ends.len()).sum()
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
