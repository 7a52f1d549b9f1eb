//! Prints the server's CRDs as YAML (what `lifeboat install --dry-run` includes).
fn main() {
    for crd in lifeboat_types::api::crd::all() {
        println!("---\n{}", serde_yaml_ng::to_string(&crd).unwrap());
    }
}
