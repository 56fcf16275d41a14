//! `infra/` cannot be applied from here (no network to Yandex Cloud), so its Terraform is
//! checked for what can be checked offline: every `.tf` file parses as HCL, and every
//! output the README tells the user to copy exists — and maps onto a plastinka setting or
//! variable that exists.

use std::collections::BTreeSet;
use std::path::Path;

fn infra() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("infra")
}

/// Every `output "NAME"` block of the Terraform files.
fn outputs() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(infra()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "tf") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let body: hcl::Body = hcl::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid HCL: {e}", path.display()));
        for block in body.blocks() {
            if block.identifier() == "output" {
                names.insert(block.labels()[0].as_str().to_string());
            }
        }
    }
    assert!(files >= 4, "infra/ has {files} .tf files");
    names
}

#[test]
fn every_output_the_readme_names_exists() {
    let outputs = outputs();
    let readme = std::fs::read_to_string(infra().join("README.md")).unwrap();
    let named: BTreeSet<String> = readme
        .split("terraform output -raw ")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!named.is_empty());
    for name in &named {
        assert!(
            outputs.contains(name),
            "README names output «{name}», infra/ has {outputs:?}"
        );
    }
    // The two settings and the key file plastinka reads.
    for needed in ["project_id", "folder_id", "authorized_key_json"] {
        assert!(
            named.contains(needed),
            "README does not tell the user to copy «{needed}»"
        );
    }
    let defaults = plastinka::config::RemoteConfig::default();
    let settings = toml::Table::try_from(&defaults).unwrap();
    assert!(settings.contains_key("project_id") && settings.contains_key("folder_id"));
    assert!(readme.contains(plastinka::remote::auth::KEY_FILE_VARIABLE));
}
