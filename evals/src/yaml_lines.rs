//! Where a field path (`scorers[2].pattern`) is written in a YAML text, so errors found after
//! parsing (a bad regex, a duplicate name) still point at a line and column.
//!
//! serde_yaml keeps no spans in its `Value`, so this scans the text: block mappings and block
//! sequences by indentation, `- key: value` items, and keys inside a one-line flow mapping
//! (`{ size: 0, seed: 1 }`). Anything it cannot follow (anchors, multi-line flow collections)
//! falls back to the deepest enclosing key it found.

use crate::error::Location;

/// One significant piece of a line: a `- ` marker or the content after indentation/markers.
#[derive(Debug)]
struct Piece<'a> {
    line: usize,
    /// 0-based byte column.
    col: usize,
    dash: bool,
    text: &'a str,
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut col = raw.len() - trimmed.len();
        let mut rest = trimmed;
        // `- - x` nests sequences on one line; each marker is its own piece.
        while rest == "-" || rest.starts_with("- ") {
            out.push(Piece {
                line: i + 1,
                col,
                dash: true,
                text: "-",
            });
            let after = &rest[1..];
            let skipped = after.len() - after.trim_start().len();
            col += 1 + skipped;
            rest = after.trim_start();
        }
        if !rest.is_empty() && !rest.starts_with('#') {
            out.push(Piece {
                line: i + 1,
                col,
                dash: false,
                text: rest,
            });
        }
    }
    out
}

/// `key:` at the start of `text` (plain, single- or double-quoted key).
fn starts_with_key(text: &str, key: &str) -> bool {
    [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
        format!("{key} :"),
    ]
    .iter()
    .any(|k| text.starts_with(k.as_str()) && is_key_end(text, k.len()))
}

fn is_key_end(text: &str, at: usize) -> bool {
    text[at..].is_empty() || text[at..].starts_with([' ', '\t'])
}

/// The 1-based line and column of a field path, or of the deepest part of it that was found.
pub(crate) fn locate(text: &str, path: &str) -> Option<Location> {
    let ps = pieces(text);
    let mut range = 0..ps.len();
    let mut found: Option<Location> = None;
    let mut last_piece: Option<usize> = None;
    for segment in split_path(path) {
        match segment {
            Segment::Key(key) => {
                // An empty range: the parent's value is on its own line (a flow mapping).
                let indent = ps[range.clone()].iter().map(|p| p.col).min();
                let hit = indent.and_then(|indent| {
                    range.clone().find(|&i| {
                        !ps[i].dash && ps[i].col == indent && starts_with_key(ps[i].text, key)
                    })
                });
                let Some(i) = hit else {
                    // Maybe inside a flow mapping on the enclosing line: `sample: { size: 0 }`.
                    if let Some(j) = last_piece
                        && let Some(off) = find_in_flow(ps[j].text, key)
                    {
                        return Some(Location {
                            line: ps[j].line,
                            column: Some(ps[j].col + off + 1),
                        });
                    }
                    return found;
                };
                found = Some(Location {
                    line: ps[i].line,
                    column: Some(ps[i].col + 1),
                });
                last_piece = Some(i);
                let indent = ps[i].col;
                // The value's block: everything after the key that is deeper, plus a sequence
                // written at the key's own indentation (`key:\n- item`).
                let end = (i + 1..range.end)
                    .find(|&j| ps[j].col < indent || (ps[j].col == indent && !ps[j].dash))
                    .unwrap_or(range.end);
                range = i + 1..end;
            }
            Segment::Index(n) => {
                if range.is_empty() {
                    return found;
                }
                let indent = ps[range.clone()].iter().map(|p| p.col).min()?;
                let items: Vec<usize> = range
                    .clone()
                    .filter(|&i| ps[i].dash && ps[i].col == indent)
                    .collect();
                let Some(&i) = items.get(n) else {
                    return found;
                };
                found = Some(Location {
                    line: ps[i].line,
                    column: Some(ps[i].col + 1),
                });
                last_piece = Some(i + 1).filter(|&j| j < range.end && ps[j].line == ps[i].line);
                let end = (i + 1..range.end)
                    .find(|&j| ps[j].col <= indent)
                    .unwrap_or(range.end);
                range = i + 1..end;
            }
        }
    }
    found
}

/// The 1-based line of every item of the block sequence at `path` (`dataset`), in one pass:
/// what [`locate`] of `path[i]` gives for each i, without rescanning the text per item.
pub(crate) fn item_lines(text: &str, path: &str) -> Vec<usize> {
    let ps = pieces(text);
    let Some(at) = locate(text, path) else {
        return Vec::new();
    };
    // The key's piece, then its block: the pieces after it that are deeper, or dashes at its
    // own indentation.
    let Some(key) = ps
        .iter()
        .position(|p| !p.dash && p.line == at.line && Some(p.col + 1) == at.column)
    else {
        return Vec::new();
    };
    let indent = ps[key].col;
    let block: Vec<&Piece<'_>> = ps[key + 1..]
        .iter()
        .take_while(|p| p.col > indent || (p.col == indent && p.dash))
        .collect();
    let Some(item_indent) = block.iter().map(|p| p.col).min() else {
        return Vec::new();
    };
    block
        .iter()
        .filter(|p| p.dash && p.col == item_indent)
        .map(|p| p.line)
        .collect()
}

/// The byte offset of `key:` inside a one-line flow mapping written after a key or dash.
fn find_in_flow(text: &str, key: &str) -> Option<usize> {
    let open = text.find('{')?;
    let body = &text[open..];
    for sep in ["{", ","] {
        let mut from = 0;
        while let Some(i) = body[from..].find(sep) {
            let start = from + i + 1;
            let rest = &body[start..];
            let skipped = rest.len() - rest.trim_start().len();
            let candidate = rest.trim_start();
            if candidate.starts_with(&format!("{key}:"))
                || candidate.starts_with(&format!("\"{key}\":"))
            {
                return Some(open + start + skipped);
            }
            from = start;
        }
    }
    None
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for index in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(n) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(n));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = "\
id: demo
# a comment
dataset:
  - id: a
    question: hi
  - id: b
    question: there
scorers:
- type: regex
  pattern: 'a+'
- type: numeric
  expected: total
  abs_tol: 0.1
  nested:
    deep: 1
sample: { size: 0, seed: 7 }
target:
  type: recorded
  path: out.jsonl
";

    fn at(path: &str) -> Option<(usize, Option<usize>)> {
        locate(SUITE, path).map(|l| (l.line, l.column))
    }

    #[test]
    fn finds_top_level_keys() {
        assert_eq!(at("id"), Some((1, Some(1))));
        assert_eq!(at("target"), Some((17, Some(1))));
        assert_eq!(at("target.path"), Some((19, Some(3))));
    }

    #[test]
    fn finds_list_items_and_their_keys() {
        assert_eq!(at("dataset[1]"), Some((6, Some(3))));
        assert_eq!(at("dataset[1].question"), Some((7, Some(5))));
        assert_eq!(at("dataset[0].id"), Some((4, Some(5))));
        // A sequence written at its key's indentation.
        assert_eq!(at("scorers[1].abs_tol"), Some((13, Some(3))));
        assert_eq!(at("scorers[0].pattern"), Some((10, Some(3))));
        assert_eq!(at("scorers[1].nested.deep"), Some((15, Some(5))));
    }

    #[test]
    fn a_key_of_one_item_is_not_found_in_the_next() {
        // `pattern` is only in scorers[0]; scorers[1] has none: the item's line is the answer.
        assert_eq!(at("scorers[1].pattern"), Some((11, Some(1))));
    }

    #[test]
    fn finds_keys_inside_a_flow_mapping() {
        assert_eq!(at("sample.seed"), Some((16, Some(20))));
        assert_eq!(at("sample.size"), Some((16, Some(11))));
    }

    #[test]
    fn item_lines_agree_with_locating_each_item() {
        let lines = item_lines(SUITE, "dataset");
        assert_eq!(lines, vec![4, 6]);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(at(&format!("dataset[{i}]")).map(|l| l.0), Some(*line));
        }
        assert_eq!(item_lines(SUITE, "scorers"), vec![9, 11]);
        assert!(item_lines(SUITE, "nope").is_empty());
        assert!(item_lines(SUITE, "id").is_empty());
    }

    #[test]
    fn unknown_paths_fall_back_to_the_deepest_known_key() {
        assert_eq!(at("target.nope"), Some((17, Some(1))));
        assert_eq!(at("nope"), None);
        assert_eq!(at("dataset[9]"), Some((3, Some(1))));
    }
}
