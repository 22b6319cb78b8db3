//! Mutations of seed inputs. Without coverage feedback (see lib.rs) the mutations carry the
//! weight, so most are structure-aware: the input is parsed as JSON, one node is changed (a value
//! swapped for one seen under the same key elsewhere in the corpus, a boundary number, a hostile
//! string, a key deleted or spliced in) and the tree is written back. Such inputs still parse, so
//! they reach validation and compilation instead of dying in the tokenizer. A third of the rounds
//! mutate raw bytes for the parser's error paths.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::rng::Rng;

/// Largest input kept: mutation must not grow inputs without bound.
const MAX_LEN: usize = 256 * 1024;

/// Byte strings worth inserting into raw input.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "null",
    "true",
    "-",
    "-1",
    "0",
    "1e999",
    "-0",
    "0.5",
    "18446744073709551616",
    "-9223372036854775809",
    "\\u0000",
    "\\ud800",
    "\\n",
    "\"\":",
    "{}",
    "[]",
    "\"../..\"",
    "\u{fffd}",
    "\u{0}",
];

/// Strings that have meant trouble for container runtimes, or are names the spec knows.
const STRINGS: &[&str] = &[
    "",
    "/",
    ".",
    "..",
    "../../../etc",
    "/proc/self/fd/3",
    "/proc/self/exe",
    "/dev/console",
    "/dev/null",
    "//",
    "a\u{0}b",
    "\n",
    " ",
    "~",
    "rootfs/../..",
    "é",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_EQ",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_S390X",
    "SECCOMP_FILTER_FLAG_LOG",
    "CAP_SYS_ADMIN",
    "CAP_BOGUS",
    "CAP_LAST_CAP",
    "pid",
    "user",
    "mount",
    "time",
    "bind",
    "rbind",
    "ro",
    "rw",
    "tmpcopyup",
    "idmap",
    "rshared",
    "size=0",
    "mode=7777",
    "1.0.2",
    "1.3.0-rc.1",
    "2.0.0",
    "1",
    "RLIMIT_NOFILE",
    "kernel.domainname",
    "net..x",
    "/sys/fs/cgroup",
    "socket",
    "clone3",
    "nonexistent_syscall",
];

fn pick_str(rng: &mut Rng) -> &'static str {
    STRINGS[rng.below(STRINGS.len())]
}

fn number(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => 0.into(),
        1 => 1.into(),
        2 => (-1).into(),
        3 => i64::MIN.into(),
        4 => i64::MAX.into(),
        5 => u64::MAX.into(),
        6 => 4096.into(),
        7 => u32::MAX.into(),
        8 => (u32::MAX as u64 + 1).into(),
        9 => 1.5.into(),
        10 => (rng.below(64) as u64).into(),
        _ => rng.next_u64().into(),
    }
}

fn leaf(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0..=3 => Value::String(rng.pick(STRINGS).to_string()),
        4..=6 => number(rng),
        7 => Value::Bool(rng.one_in(2)),
        8 => Value::Null,
        _ if rng.one_in(2) => Value::Array(vec![]),
        _ => Value::Object(Map::new()),
    }
}

/// Keys and values seen anywhere in the corpus, to splice between inputs.
#[derive(Default)]
pub struct Pool {
    by_key: HashMap<String, Vec<Value>>,
    keys: Vec<String>,
    values: Vec<Value>,
}

impl Pool {
    pub fn from_corpus(corpus: &[Vec<u8>]) -> Pool {
        let mut pool = Pool::default();
        for input in corpus {
            if let Ok(v) = serde_json::from_slice::<Value>(input) {
                pool.collect(&v);
            }
        }
        pool.keys = pool.by_key.keys().cloned().collect();
        pool.keys.sort();
        pool
    }

    fn collect(&mut self, v: &Value) {
        self.values.push(v.clone());
        match v {
            Value::Array(a) => a.iter().for_each(|x| self.collect(x)),
            Value::Object(o) => {
                for (k, x) in o {
                    self.by_key.entry(k.clone()).or_default().push(x.clone());
                    self.collect(x);
                }
            }
            _ => {}
        }
    }

    fn value(&self, rng: &mut Rng) -> Value {
        if self.values.is_empty() {
            return leaf(rng);
        }
        rng.pick(&self.values).clone()
    }

    /// A key seen in the corpus and one of the values it had.
    fn entry(&self, rng: &mut Rng) -> Option<(String, Value)> {
        if self.keys.is_empty() {
            return None;
        }
        let key = rng.pick(&self.keys).clone();
        let value = rng.pick(&self.by_key[&key]).clone();
        Some((key, value))
    }
}

/// One mutant of `input`; `corpus` supplies splice partners, `pool` keys and values.
pub fn mutate(input: &[u8], corpus: &[Vec<u8>], pool: &Pool, rng: &mut Rng) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if rng.one_in(3) {
            bytes(&mut data, corpus, rng);
        } else {
            structure(&mut data, pool, rng);
        }
    }
    data.truncate(MAX_LEN);
    data
}

fn bytes(data: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut Rng) {
    let len = data.len();
    let at = if len == 0 { 0 } else { rng.below(len) };
    match rng.below(7) {
        0 if len > 0 => data[at] ^= 1 << rng.below(8),
        1 if len > 0 => data[at] = rng.next_u64() as u8,
        2 => {
            let t = rng.pick(TOKENS).as_bytes();
            data.splice(at..at, t.iter().copied());
        }
        3 if len > 0 => {
            let end = (at + 1 + rng.below(16)).min(len);
            data.drain(at..end);
        }
        4 if len > 0 => {
            let end = (at + 1 + rng.below(64)).min(len);
            let chunk = data[at..end].to_vec();
            let to = rng.below(len);
            data.splice(to..to, chunk);
        }
        5 if !corpus.is_empty() => {
            // Our prefix, another input's suffix.
            let other = rng.pick(corpus);
            let from = if other.is_empty() { 0 } else { rng.below(other.len()) };
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        _ => data.truncate(at),
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// The `n`th node in pre-order.
fn nth_mut<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|x| nth_mut(x, n)),
        Value::Object(o) => o.values_mut().find_map(|x| nth_mut(x, n)),
        _ => None,
    }
}

fn structure(data: &mut Vec<u8>, pool: &Pool, rng: &mut Rng) {
    let Ok(mut tree) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut n = rng.below(count(&tree));
    if let Some(node) = nth_mut(&mut tree, &mut n) {
        change(node, pool, rng);
    }
    let out = if rng.one_in(2) {
        serde_json::to_vec(&tree)
    } else {
        serde_json::to_vec_pretty(&tree)
    };
    if let Ok(out) = out {
        *data = out;
    }
}

fn change(node: &mut Value, pool: &Pool, rng: &mut Rng) {
    match (rng.below(4), node) {
        (0, node) => *node = leaf(rng),
        (1, node) => *node = pool.value(rng),
        (_, Value::Object(o)) => match rng.below(3) {
            0 if !o.is_empty() => {
                let k = o.keys().nth(rng.below(o.len())).cloned().unwrap_or_default();
                o.remove(&k);
            }
            1 if !o.is_empty() => {
                // Another value this key has somewhere in the corpus, or a leaf.
                let k = o.keys().nth(rng.below(o.len())).cloned().unwrap_or_default();
                let v = match pool.by_key.get(&k) {
                    Some(vs) if !rng.one_in(4) => rng.pick(vs).clone(),
                    _ => leaf(rng),
                };
                o.insert(k, v);
            }
            _ => {
                if let Some((k, v)) = pool.entry(rng) {
                    o.insert(k, v);
                }
            }
        },
        (_, Value::Array(a)) => match rng.below(4) {
            0 if !a.is_empty() => {
                a.remove(rng.below(a.len()));
            }
            1 if !a.is_empty() => {
                let x = a[rng.below(a.len())].clone();
                a.insert(rng.below(a.len() + 1), x);
            }
            2 => a.push(leaf(rng)),
            _ => a.push(pool.value(rng)),
        },
        (_, Value::String(s)) => match rng.below(3) {
            0 => s.push_str(pick_str(rng)),
            1 => s.insert_str(0, pick_str(rng)),
            _ => {
                let cut = s.char_indices().map(|(i, _)| i).nth(rng.below(s.chars().count() + 1));
                s.truncate(cut.unwrap_or(s.len()));
            }
        },
        (_, node) => *node = number(rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_mutants_mostly_still_parse() {
        let seed = br#"{"a":[1,2,{"b":"c"}],"d":{"e":null}}"#.to_vec();
        let corpus = vec![seed.clone()];
        let pool = Pool::from_corpus(&corpus);
        let mut rng = Rng::new(7);
        let mut parsed = 0;
        for _ in 0..1000 {
            let mut data = seed.clone();
            structure(&mut data, &pool, &mut rng);
            parsed += serde_json::from_slice::<Value>(&data).is_ok() as usize;
        }
        assert_eq!(parsed, 1000);
    }
}
