//! Damaged blocks given to `tools compact` and `tools inspect`: each gives an error that names
//! the file (and the offset for binary files), and `compact` writes nothing to its output dir.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn generated_block(tmp: &Path) -> PathBuf {
    let dir = tmp.join("gen");
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        dir.to_str().unwrap(),
        "--series",
        "40",
        "--hours",
        "2",
    ]);
    block_dirs(&dir).pop().unwrap()
}

fn patch(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

struct Case {
    name: &'static str,
    damage: fn(&Path),
    /// Text the error must contain (besides the file name).
    want: &'static [&'static str],
    file: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "index bad magic",
        damage: |b| patch(&b.join("index"), |x| x[0] = 0),
        want: &["offset 0", "magic"],
        file: "index",
    },
    Case {
        name: "index truncated",
        damage: |b| patch(&b.join("index"), |x| x.truncate(x.len() / 2)),
        want: &["offset"],
        file: "index",
    },
    Case {
        name: "index series CRC",
        // The first series entry starts at the first 16-byte boundary after the symbols.
        damage: |b| {
            patch(&b.join("index"), |x| {
                let toc = x.len() - 52;
                let series = u64::from_be_bytes(x[toc + 8..toc + 16].try_into().unwrap()) as usize;
                let first = series.div_ceil(16) * 16;
                x[first + 3] ^= 0x40;
            })
        },
        want: &["offset", "CRC"],
        file: "index",
    },
    Case {
        name: "chunk CRC",
        damage: |b| patch(&b.join("chunks/000001"), |x| x[100] ^= 0x01),
        want: &["offset", "CRC"],
        file: "chunks/000001",
    },
    Case {
        name: "segment truncated: index points past it",
        damage: |b| patch(&b.join("chunks/000001"), |x| x.truncate(x.len() - 500)),
        want: &["offset", "past the end"],
        file: "chunks/000001",
    },
    Case {
        name: "segment bad magic",
        damage: |b| patch(&b.join("chunks/000001"), |x| x[1] ^= 0xff),
        want: &["offset 0"],
        file: "chunks/000001",
    },
    Case {
        name: "meta garbage",
        damage: |b| std::fs::write(b.join("meta.json"), "{not json").unwrap(),
        want: &["invalid meta.json"],
        file: "meta.json",
    },
    Case {
        name: "meta wrong version",
        damage: |b| {
            patch(&b.join("meta.json"), |x| {
                let s = String::from_utf8(x.clone())
                    .unwrap()
                    .replace("\"version\": 1", "\"version\": 3");
                *x = s.into_bytes();
            })
        },
        want: &["unsupported version 3"],
        file: "meta.json",
    },
    Case {
        name: "meta missing field",
        damage: |b| {
            patch(&b.join("meta.json"), |x| {
                let s = String::from_utf8(x.clone())
                    .unwrap()
                    .replace("\"maxTime\"", "\"maxTimeX\"");
                *x = s.into_bytes();
            })
        },
        want: &["missing field `maxTime`"],
        file: "meta.json",
    },
];

#[test]
fn every_kind_of_damage_is_reported_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = generated_block(tmp.path());
    let healthy = compactd(&["tools", "inspect", pristine.to_str().unwrap()]);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stdout)
    );
    for (i, case) in CASES.iter().enumerate() {
        let work = tmp.path().join(format!("case{i}"));
        let block = work.join(pristine.file_name().unwrap());
        copy_dir(&pristine, &block);
        (case.damage)(&block);
        let out = work.join("out");
        let res = compactd(&[
            "tools",
            "compact",
            "--out",
            out.to_str().unwrap(),
            block.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{}: compact succeeded", case.name);
        let file = block.join(case.file);
        assert!(
            stderr.contains(file.to_str().unwrap()),
            "{}: error does not name {}: {stderr}",
            case.name,
            file.display()
        );
        for w in case.want {
            assert!(
                stderr.contains(w),
                "{}: error lacks {w:?}: {stderr}",
                case.name
            );
        }
        let left = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(
            left, 0,
            "{}: compact left files in the output dir",
            case.name
        );
        let ins = compactd(&["tools", "inspect", block.to_str().unwrap()]);
        assert!(
            !ins.status.success(),
            "{}: inspect passed a damaged block",
            case.name
        );
    }
}
