//! The image config's `User` (`uid`, `uid:gid`, `name`, `name:group`, mixed) resolved the way
//! containerd does: names through the image's own /etc/passwd and /etc/group, the gid from
//! the passwd entry when only a user is given, and additional gids from the groups that list
//! the user as a member.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Read `path` inside `rootfs` (symlinks resolved within it); missing is empty.
fn read_in_root(rootfs: &Path, path: &str) -> Result<String> {
    match fsutil::open_in_root(rootfs, path) {
        Ok(mut f) => {
            let mut s = String::new();
            f.by_ref()
                .take(16 << 20)
                .read_to_string(&mut s)
                .map_err(|e| Error::io(format!("read {path} in the image"), e))?;
            Ok(s)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io(format!("open {path} in the image"), e)),
    }
}

/// Resolve `spec` against the image mounted at `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<User> {
    resolve_with(
        spec,
        &read_in_root(rootfs, "/etc/passwd")?,
        &read_in_root(rootfs, "/etc/group")?,
    )
}

/// Resolve `spec` given the text of /etc/passwd and /etc/group.
pub fn resolve_with(spec: &str, passwd: &str, group: &str) -> Result<User> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(User {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
        });
    }
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|p| p.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|p| p.name == u)
                .ok_or_else(|| Error::NotFound(format!("user {u:?} not found in the image's /etc/passwd")))?,
        ),
    };
    let uid = match u.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.map_or(0, |p| p.uid),
    };
    let gid = match g {
        None => entry.map_or(0, |p| p.gid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                groups
                    .iter()
                    .find(|x| x.name == g)
                    .ok_or_else(|| Error::NotFound(format!("group {g:?} not found in the image's /etc/group")))?
                    .gid
            }
        },
    };
    // Supplementary groups: those naming the user as a member (only known for named users or
    // uids with a passwd entry), without the primary group.
    let mut additional_gids: Vec<u32> = match entry {
        Some(p) => groups
            .iter()
            .filter(|x| x.members.contains(&p.name) && x.gid != gid)
            .map(|x| x.gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nalice:x:1000:\naudio:x:29:alice,www\nvideo:x:44:alice\nstaff:x:50:\n";

    fn r(s: &str) -> Result<User> {
        resolve_with(s, PASSWD, GROUP)
    }

    #[test]
    fn user_forms() {
        assert_eq!(
            r("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("alice").unwrap(),
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![29, 44]
            }
        );
        assert_eq!(
            r("1000").unwrap(),
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![29, 44]
            }
        );
        assert_eq!(
            r("1000:50").unwrap(),
            User {
                uid: 1000,
                gid: 50,
                additional_gids: vec![29, 44]
            }
        );
        assert_eq!(
            r("alice:staff").unwrap(),
            User {
                uid: 1000,
                gid: 50,
                additional_gids: vec![29, 44]
            }
        );
        assert_eq!(
            r("www:audio").unwrap(),
            User {
                uid: 33,
                gid: 29,
                additional_gids: vec![]
            }
        );
        // A uid the image does not know: gid 0, no extra groups.
        assert_eq!(
            r("4242").unwrap(),
            User {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("4242:7").unwrap(),
            User {
                uid: 4242,
                gid: 7,
                additional_gids: vec![]
            }
        );
        assert!(r("bob").unwrap_err().to_string().contains("\"bob\""));
        assert!(r("alice:nogroup").unwrap_err().to_string().contains("nogroup"));
    }

    #[test]
    fn reads_through_symlinks_inside_the_rootfs_only() {
        let d = std::env::temp_dir().join(format!("bridge-user-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join("real-passwd"), "bob:x:7:8::/:/bin/sh\n").unwrap();
        // An absolute link resolves inside the rootfs, not to the host's /etc/passwd.
        let _ = std::fs::remove_file(d.join("etc/passwd"));
        std::os::unix::fs::symlink("/real-passwd", d.join("etc/passwd")).unwrap();
        assert_eq!(resolve(&d, "bob").unwrap().uid, 7);
        assert!(resolve(&d, "root").is_err(), "read the host's passwd");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
