//! Inputs whose series get new labels (`tools bucket rewrite --rewrite.to-relabel-config`).
//! The block's series are read once up front (labels only), each gets its new label set (or
//! keeps its own), and the sets are sorted: series whose new sets are equal become one output
//! series, whose chunks merge as overlapping series of several blocks do. A series given an
//! empty set is left out. The input gets its own symbol table, exactly the strings its new
//! label sets use, as Thanos' relabel modifier builds it.

use std::collections::BTreeSet;

use super::super::block::BlockReader;
use super::super::error::{Result, TsdbError};
use super::super::index::Symbols;
use super::series::{Order, RelabelledSeries};
use super::SeriesRelabel;

/// A relabelled input's walk: its symbol table and its output series in label order.
pub(super) struct RelabelledOrder {
    /// The strings the new label sets use, sorted.
    pub symbols: Symbols,
    /// The walk, refs into `symbols`.
    pub order: Order,
}

/// Reads every series of `block` and sorts them by their labels after `relabel`.
pub(super) fn relabelled_order(
    block: &mut BlockReader,
    relabel: &SeriesRelabel,
) -> Result<RelabelledOrder> {
    let strings = CombinedStrings::new(block.index.symbols(), relabel);
    let postings = block.index.all_postings()?;
    let (mut raw, mut chunks) = (Vec::new(), Vec::new());
    let mut series: Vec<(Vec<(u32, u32)>, u32)> = Vec::with_capacity(postings.len());
    let mut used = vec![false; strings.len()];
    for id in postings {
        let labels: Vec<(u32, u32)> = match relabel.get(&id) {
            Some(new) if new.is_empty() => continue,
            Some(new) => {
                let table = block.index.symbols();
                new.iter()
                    .map(|l| (strings.find(table, &l.name), strings.find(table, &l.value)))
                    .collect()
            }
            None => {
                block.index.series(id, &mut raw, &mut chunks)?;
                let mut l = Vec::with_capacity(raw.len());
                for &(n, v) in &raw {
                    match (strings.of_block(n), strings.of_block(v)) {
                        (Some(n), Some(v)) => l.push((n, v)),
                        _ => return Err(bad_ref(block, id, n.max(v))),
                    }
                }
                l.sort_unstable();
                l
            }
        };
        for &(n, v) in &labels {
            used[n as usize] = true;
            used[v as usize] = true;
        }
        series.push((labels, id));
    }
    // Keep only the strings used, renumbered in order (so refs still compare as strings).
    let mut rank = vec![0u32; used.len()];
    let mut next = 0u32;
    for (r, &u) in rank.iter_mut().zip(&used) {
        *r = next;
        next += u32::from(u);
    }
    let table = block.index.symbols();
    let symbols = Symbols::from_sorted(
        (0..used.len())
            .filter(|&c| used[c])
            .map(|c| strings.get(table, c)),
    );
    for (labels, _) in &mut series {
        for (n, v) in labels.iter_mut() {
            (*n, *v) = (rank[*n as usize], rank[*v as usize]);
        }
    }
    Ok(RelabelledOrder {
        symbols,
        order: Order::Relabelled(group(series)),
    })
}

/// Sorts `series` by labels and gathers the ids of equal label sets, in postings order.
fn group(mut series: Vec<(Vec<(u32, u32)>, u32)>) -> Vec<RelabelledSeries> {
    // Stable: block series that meet keep their postings order.
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut walk: Vec<RelabelledSeries> = Vec::new();
    for (labels, id) in series {
        match walk.last_mut() {
            Some(last) if last.labels == labels => last.ids.push(id),
            _ => walk.push(RelabelledSeries {
                labels,
                ids: vec![id],
            }),
        }
    }
    walk
}

/// The error for series `id` of `block`, which references a symbol past the table.
fn bad_ref(block: &BlockReader, id: u32, r: u32) -> TsdbError {
    TsdbError::corrupt(
        block.index.path(),
        0,
        format!(
            "series {id} references symbol {r}, the table has {}",
            block.index.symbols().len()
        ),
    )
}

/// The block's symbols and the new strings the relabelling brings, in one sorted numbering.
struct CombinedStrings {
    extra: Vec<String>,
    /// The combined ref of each block symbol.
    block_refs: Vec<u32>,
    /// The combined ref of each extra string.
    extra_refs: Vec<u32>,
    /// Per combined ref: `Ok(block ref)` or `Err(extra index)`.
    by_ref: Vec<std::result::Result<u32, u32>>,
}

impl CombinedStrings {
    fn new(block: &Symbols, relabel: &SeriesRelabel) -> Self {
        let extra: Vec<String> = relabel
            .values()
            .flat_map(|l| l.iter().flat_map(|p| [&p.name, &p.value]))
            .filter(|s| block.lookup(s).is_none())
            .cloned()
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let (mut i, mut j) = (0usize, 0usize);
        let mut by_ref = Vec::with_capacity(block.len() + extra.len());
        let (mut block_refs, mut extra_refs) = (Vec::new(), Vec::new());
        while i < block.len() || j < extra.len() {
            let take_block = j == extra.len()
                || (i < block.len() && block.get(i as u32).is_some_and(|s| s < extra[j].as_str()));
            if take_block {
                block_refs.push(by_ref.len() as u32);
                by_ref.push(Ok(i as u32));
                i += 1;
            } else {
                extra_refs.push(by_ref.len() as u32);
                by_ref.push(Err(j as u32));
                j += 1;
            }
        }
        CombinedStrings {
            extra,
            block_refs,
            extra_refs,
            by_ref,
        }
    }

    fn len(&self) -> usize {
        self.by_ref.len()
    }

    /// The combined ref of block symbol `r`; `None` past the block's table.
    fn of_block(&self, r: u32) -> Option<u32> {
        self.block_refs.get(r as usize).copied()
    }

    /// The combined ref of `s`, a string of a new label set; `block` is the block's table.
    fn find(&self, block: &Symbols, s: &str) -> u32 {
        match block.lookup(s) {
            Some(r) => self.block_refs[r as usize],
            None => {
                let j = self
                    .extra
                    .binary_search_by(|e| e.as_str().cmp(s))
                    .expect("every string of a new label set is a block symbol or an extra one");
                self.extra_refs[j]
            }
        }
    }

    /// The string of combined ref `c`; `block` is the block's table.
    fn get<'s>(&'s self, block: &'s Symbols, c: usize) -> &'s str {
        match self.by_ref[c] {
            Ok(r) => block.get(r).unwrap_or(""),
            Err(j) => &self.extra[j as usize],
        }
    }
}
