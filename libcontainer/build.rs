//! Traces the shapes of oci-spec's `Spec` (src/spec/shape_trace.rs) and writes them as a
//! static table, sorted by path, for src/spec/keys.rs: done once here instead of in every
//! `create`.

use std::fmt::Write;

#[allow(dead_code)]
#[path = "src/spec/shape_trace.rs"]
mod shape_trace;

fn main() {
    let mut shapes: Vec<_> = shape_trace::trace().into_iter().collect();
    shapes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("static SHAPES: &[(&str, Shape)] = &[\n");
    for (path, shape) in shapes {
        let value = match shape {
            shape_trace::Shape::Fields(fields) => format!("Shape::Fields(&{fields:?})"),
            shape_trace::Shape::Map => "Shape::Map".to_string(),
        };
        let _ = writeln!(out, "    ({path:?}, {value}),");
    }
    out.push_str("];\n");
    let dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{dir}/spec_shapes.rs"), out).expect("write spec_shapes.rs");
    println!("cargo::rerun-if-changed=src/spec/shape_trace.rs");
}
