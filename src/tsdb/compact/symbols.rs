//! The output symbol table: the sorted union of every input's symbols (Prometheus writes the
//! union, used or not; a relabelled input brings its own table), plus for each input a map
//! from its symbol refs to the output's.
//! Because both tables are sorted, comparing output refs compares the strings.

use super::super::error::Result;
use super::super::index::{IndexWriter, Symbols};

/// Writes the union of the inputs' symbol tables to `index`; returns, per input, the output
/// ref of each of its symbol refs.
pub(super) fn write_union(tables: &[&Symbols], index: &mut IndexWriter) -> Result<Vec<Vec<u32>>> {
    let mut maps: Vec<Vec<u32>> = tables.iter().map(|t| Vec::with_capacity(t.len())).collect();
    let mut cursors = vec![0usize; tables.len()];
    let mut next_ref: u32 = 0;
    loop {
        let mut lowest: Option<&str> = None;
        for (t, &c) in tables.iter().zip(&cursors) {
            if c < t.len() {
                let s = t.get(c as u32).expect("cursor below len");
                if lowest.is_none_or(|l| s < l) {
                    lowest = Some(s);
                }
            }
        }
        let Some(symbol) = lowest else { break };
        index.add_symbol(symbol)?;
        for ((t, c), map) in tables.iter().zip(cursors.iter_mut()).zip(maps.iter_mut()) {
            if *c < t.len() && t.get(*c as u32) == Some(symbol) {
                map.push(next_ref);
                *c += 1;
            }
        }
        next_ref += 1;
    }
    Ok(maps)
}
