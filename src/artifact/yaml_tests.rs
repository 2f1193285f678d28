//! Tests of [`super`] (yaml.rs).

use super::*;

fn parse(text: &str) -> Node {
    let budget = Budget::new(u64::MAX);
    BoundedNode { budget: &budget }
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .unwrap()
}

/// `s` written by [`scalar`] reads back as `s`: as a mapping value, a sequence item and (on one line)
/// a key.
fn round_trip(s: &str) {
    let text = scalar(s);
    let str_node = || Node::Str(s.to_string());
    let value = format!("k: {text}\n");
    assert_eq!(
        parse(&value),
        Node::Map(vec![(Node::Str("k".into()), str_node())]),
        "{value}"
    );
    let item = format!("l:\n- {text}\n");
    assert_eq!(
        parse(&item),
        Node::Map(vec![(Node::Str("l".into()), Node::Seq(vec![str_node()]))]),
        "{item}"
    );
    if !s.contains('\n') {
        let key = format!("{text}: null\n");
        assert_eq!(
            parse(&key),
            Node::Map(vec![(str_node(), Node::Null)]),
            "{key}"
        );
    }
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
        round_trip(s);
    }
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
        round_trip(&s);
        checked += 1;
    }
    assert_eq!(checked, 20_000);
}
