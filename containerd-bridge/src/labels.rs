//! `image label REF [KEY=VALUE | KEY=]...`: labels on an image record, as ctr's `images label`
//! sets and clears them (an empty value removes the label).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::store::{ImageRecord, Store};

/// containerd's limit on a label: key and value together.
const MAX_LABEL: usize = 4096;

/// One change: set KEY to a value, or remove it (None).
pub type Change = (String, Option<String>);

/// Parse `KEY=VALUE` (set) and `KEY=` (remove) arguments.
pub fn parse(args: &[String]) -> Result<Vec<Change>> {
    args.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| Error::Invalid(format!("label {a:?}: want KEY=VALUE (KEY= removes it)")))?;
            if k.is_empty() {
                return Err(Error::Invalid(format!("label {a:?}: the key is empty")));
            }
            if k.len() + v.len() > MAX_LABEL {
                return Err(Error::Invalid(format!(
                    "label {k:?}: key and value are longer than {MAX_LABEL} bytes"
                )));
            }
            Ok((k.to_string(), (!v.is_empty()).then(|| v.to_string())))
        })
        .collect()
}

/// Apply `changes` to `labels`.
pub fn apply_to(labels: &mut BTreeMap<String, String>, changes: &[Change]) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                labels.insert(k.clone(), v.clone());
            }
            None => {
                labels.remove(k);
            }
        }
    }
}

/// Change the labels of image `name` in the store's namespace; returns the updated record.
pub fn label(store: &Store, name: &str, changes: &[Change]) -> Result<ImageRecord> {
    let _lock = store.lock()?;
    let mut rec = store.image(name)?;
    if changes.is_empty() {
        return Ok(rec);
    }
    apply_to(&mut rec.labels, changes);
    store.put_image(rec.clone())?;
    Ok(rec)
}

/// `k=v,k2=v2`, sorted, as ctr prints labels.
pub fn format(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &[&str]) -> Vec<String> {
        a.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn set_change_and_remove() {
        let mut l = BTreeMap::new();
        apply_to(&mut l, &parse(&s(&["team=blue", "tier=web", "x=a=b"])).unwrap());
        assert_eq!(format(&l), "team=blue,tier=web,x=a=b");
        apply_to(&mut l, &parse(&s(&["team=", "tier=db", "absent="])).unwrap());
        assert_eq!(format(&l), "tier=db,x=a=b");
    }

    #[test]
    fn bad_labels_are_named() {
        for bad in ["novalue", "=v"] {
            let e = parse(&s(&[bad])).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        let long = format!("k={}", "v".repeat(MAX_LABEL));
        assert!(parse(&[long]).is_err());
    }
}
