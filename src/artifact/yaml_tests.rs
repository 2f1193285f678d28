//! Tests of [`super`] (yaml.rs).

use super::*;

fn parse(text: &str) -> Node {
    let budget = Budget::new(u64::MAX);
    BoundedNode { budget: &budget }
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .unwrap()
}

fn round_trip(node: &Node) -> Option<String> {
    let mut out = String::new();
    emit_document(node, &mut out)?;
    let back = parse(&out);
    assert_eq!(&back, node, "emitted:\n{out}");
    Some(out)
}

fn doc_with(value: Node) -> Node {
    Node::Map(vec![
        (Node::Str("k".into()), value.clone()),
        (
            Node::Str("list".into()),
            Node::Seq(vec![
                value.clone(),
                Node::Map(vec![(Node::Str("x".into()), value)]),
            ]),
        ),
    ])
}

#[test]
fn tricky_strings_round_trip() {
    let strings = [
        "",
        " ",
        "yes",
        "No",
        "ON",
        "off",
        "y",
        "N",
        "~",
        "null",
        "Null",
        "true",
        "FALSE",
        "0",
        "-1",
        "1.5",
        ".5",
        ".inf",
        "-.inf",
        ".nan",
        "0x1F",
        "0o17",
        "017",
        "1_000",
        "1e3",
        "1:20",
        "2001-12-14",
        "- a",
        "-",
        "a: b",
        "a:b",
        "a:",
        "a #b",
        "a#b",
        "#c",
        "@x",
        "`x",
        "!x",
        "&x",
        "*x",
        "%x",
        "|",
        ">",
        "'",
        "\"",
        "[a]",
        "{a}",
        "a,b",
        "?",
        "? a",
        "a  b",
        " a",
        "a ",
        "tab\there",
        "line\nbreak",
        "ends\n",
        "two\n\n",
        "\nlead",
        " lead\nx",
        "x\n \ny",
        "cr\r\nlf",
        "nul\0",
        "bell\u{7}",
        "ünïcødé",
        "emoji 🚀",
        "nel\u{85}x",
        "ls\u{2028}x",
        "bom\u{FEFF}",
        "back\\slash",
        "nginx:1.27.3",
        "100m",
        "256Mi",
        "/healthz",
        "app.kubernetes.io/name",
        "sha256@abc",
        "a=b",
        "<<",
        "=",
        "script:\n  echo hi\n",
        "key: |\n  nested\n",
        "    indented\n",
        "trailing spaces  \nx",
        "---",
        "...",
        "--- a",
        "--port",
        "-x",
        "--",
        "-1",
        "-.5",
        "-",
        "--1",
        "-- a",
    ];
    for s in strings {
        round_trip(&doc_with(Node::Str(s.to_string())))
            .unwrap_or_else(|| panic!("{s:?} should be emitted"));
    }
}

#[test]
fn other_scalars_round_trip() {
    for v in [
        Node::Null,
        Node::Bool(true),
        Node::Bool(false),
        Node::Int(-5),
        Node::UInt(u64::MAX),
        Node::Int(i64::MIN),
        Node::Map(vec![]),
        Node::Seq(vec![]),
        Node::Seq(vec![Node::Seq(vec![
            Node::UInt(1),
            Node::Seq(vec![Node::UInt(2)]),
        ])]),
    ] {
        round_trip(&doc_with(v));
    }
}

#[test]
fn unsupported_shapes_fall_back() {
    for v in [
        Node::Float(1.5),
        Node::Tagged("!x".into(), Box::new(Node::Null)),
    ] {
        let mut out = String::new();
        assert!(emit_document(&doc_with(v), &mut out).is_none());
    }
    let complex_key = Node::Map(vec![(Node::Seq(vec![Node::Int(1)]), Node::Null)]);
    assert!(emit_document(&complex_key, &mut String::new()).is_none());
}

#[test]
fn looks_like_libyaml_for_ordinary_objects() {
    let src = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx\n        args:\n        - --port\n        - '8080'\n        env: []\n";
    let node = parse(src);
    let out = round_trip(&node).unwrap();
    let reference = serde_yaml_ng::to_string(&node.to_value()).unwrap();
    // serde_yaml_ng single-quotes number-like strings; we double-quote them.
    assert_eq!(out, reference.replace("'8080'", "\"8080\""));
}

#[test]
fn duplicate_keys_are_found_in_small_and_large_maps() {
    let budget = Budget::new(u64::MAX);
    let small = BoundedNode { budget: &budget }
        .deserialize(serde_yaml_ng::Deserializer::from_str("a: 1\nb: 2\na: 3\n"));
    assert!(small.unwrap_err().to_string().contains("duplicate"));
    let mut big: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
    big.push_str("k7: again\n");
    let large =
        BoundedNode { budget: &budget }.deserialize(serde_yaml_ng::Deserializer::from_str(&big));
    assert!(large.unwrap_err().to_string().contains("duplicate"));
}

#[test]
fn random_strings_round_trip() {
    let alphabet: Vec<char> = "a1 :#-./@=+_\n\t\"'ü\\,[{&*!|>%?yneE0x~\r"
        .chars()
        .collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut checked = 0;
    for _ in 0..20_000 {
        let len = (next() % 9) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        // Keys and values, in a mapping and in a sequence.
        let doc = Node::Map(vec![
            (Node::Str(format!("k{s}")), Node::Str(s.clone())),
            (Node::Str("l".into()), Node::Seq(vec![Node::Str(s.clone())])),
        ]);
        if !s.contains('\n') {
            let keyed = Node::Map(vec![(Node::Str(s.clone()), Node::Null)]);
            round_trip(&keyed);
        }
        round_trip(&doc);
        checked += 1;
    }
    assert_eq!(checked, 20_000);
}
