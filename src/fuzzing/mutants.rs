//! Mutants of YAML for the differential tests: random edits of the kind that break YAML.

/// Tiny deterministic generator, so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One random edit of the kind that breaks YAML: a significant character inserted or removed, a line
/// re-indented, duplicated or dropped.
pub fn mutate(src: &str, rng: &mut Rng) -> String {
    const INSERTS: &[&str] = &[
        " ",
        "  ",
        ":",
        ": ",
        "-",
        "- ",
        "#",
        " #",
        "'",
        "\"",
        "|",
        ">",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a",
        "!",
        "\n",
        "\t",
        "a",
        "0",
        "?",
        "%",
        "@",
        "\\",
        "---\n",
        "é",
        "~",
        "name: x\n",
        "labels:\n",
        "  ",
    ];
    let mut lines: Vec<String> = src.split_inclusive('\n').map(str::to_string).collect();
    if lines.is_empty() {
        return src.to_string();
    }
    let i = rng.below(lines.len());
    match rng.below(6) {
        0 | 1 => {
            let line = &mut lines[i];
            let at = rng.below(line.len() + 1);
            if line.is_char_boundary(at) {
                line.insert_str(at, INSERTS[rng.below(INSERTS.len())]);
            }
        }
        2 => {
            let line = &mut lines[i];
            if !line.is_empty() {
                let at = rng.below(line.len());
                if line.is_char_boundary(at) && line.is_char_boundary(at + 1) {
                    line.remove(at);
                }
            }
        }
        3 => {
            let line = &mut lines[i];
            if rng.below(2) == 0 {
                line.insert_str(0, if rng.below(2) == 0 { " " } else { "  " });
            } else if line.starts_with(' ') {
                line.remove(0);
            }
        }
        4 => {
            let copy = lines[i].clone();
            lines.insert(rng.below(lines.len() + 1), copy);
        }
        _ => {
            lines.remove(i);
        }
    }
    lines.concat()
}
