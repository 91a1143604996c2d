//! One-line summaries of a step for `replay --verbose`: variants and ids, not whole sync
//! results or metas.

use compactd::core::coord::CoordResult;
use compactd::core::types::{Event, Input, Now, Output, StoreResult};
use compactd::timefmt::format_rfc3339_ms;

/// Free text (errors, events) is cut to this many characters.
const TEXT_MAX: usize = 100;

/// `step N  mono MS  wall RFC3339  INPUT -> OUTPUT, OUTPUT`.
pub fn step_line(step: u64, now: Now, input: &str, outputs: &[Output]) -> String {
    let outputs: Vec<String> = outputs.iter().map(output).collect();
    let outputs = if outputs.is_empty() {
        "-".to_string()
    } else {
        outputs.join(", ")
    };
    format!(
        "step {step:>6}  mono {:>10}  wall {}  {input} -> {outputs}",
        now.mono.0,
        format_rfc3339_ms(now.wall.0)
    )
}

/// The input's variant and ids.
pub fn input(input: &Input) -> String {
    match input {
        Input::Start => "start".into(),
        Input::Tick => "tick".into(),
        Input::Shutdown => "shutdown".into(),
        Input::Admin(request) => format!("admin#{} ({} ops)", request.id.0, request.ops.len()),
        Input::Store(id, result) => format!("store#{} {}", id.0, store_result(result)),
        Input::Compacted(job, result) => match result.as_ref() {
            Ok(Some(block)) => format!("job#{} compacted {}", job.0, block.meta.ulid),
            Ok(None) => format!("job#{} compacted (no samples)", job.0),
            Err(e) => format!(
                "job#{} failed{}: {}",
                job.0,
                if e.retryable() { " (retryable)" } else { "" },
                cut(&e.message)
            ),
        },
        Input::Coord(id, result) => format!("coord#{} {}", id.0, coord_result(result)),
    }
}

fn store_result(result: &StoreResult) -> String {
    match result {
        StoreResult::Synced(sync) => format!("synced {} blocks", sync.blocks.len()),
        StoreResult::Done => "done".into(),
        StoreResult::MarkerExisted => "marker already there".into(),
        StoreResult::Fence(None) => "fence absent".into(),
        StoreResult::Fence(Some((record, _))) => format!(
            "fence epoch {} holder {} seq {}",
            record.epoch, record.holder, record.seq
        ),
        StoreResult::FenceWritten(_) => "fence written".into(),
        StoreResult::FenceConflict => "fence conflict".into(),
        StoreResult::Failed(e) => format!("failed: {}", cut(&e.message)),
    }
}

fn coord_result(result: &CoordResult) -> String {
    match result {
        CoordResult::Observed { keys, revision } => {
            format!("observed {} keys at revision {revision}", keys.len())
        }
        CoordResult::Failed(e) => format!("failed: {}", cut(&e.message)),
        other => format!("{other:?}"),
    }
}

/// The output's kind, request id and target.
pub fn output(output: &Output) -> String {
    match output {
        Output::Store(req) => {
            let target = crate::store_host::target(req);
            let target = if target.is_empty() {
                target
            } else {
                format!(" {target}")
            };
            format!("store#{} {}{target}", req.id().0, req.name())
        }
        Output::Compact(job) => format!(
            "compact job#{} {} <- {} blocks",
            job.job.0,
            job.output,
            job.inputs.len()
        ),
        Output::Coord(req) => format!("coord#{} {}", req.id.0, req.op.name()),
        Output::Timer(at) => format!("timer {}", at.0),
        Output::Event(e) => event(e),
        Output::Exit(code) => format!("exit {code}"),
    }
}

/// `event VARIANT` and the event's block, epoch or error.
fn event(e: &Event) -> String {
    let detail = match e {
        Event::Uploaded(block) | Event::Deleted(block) | Event::PartialDeleted(block) => {
            block.to_string()
        }
        Event::Marked { block, marker, .. } => format!("{block} {marker}"),
        Event::Planned { inputs, output, .. } => format!("{output} <- {} blocks", inputs.len()),
        Event::Compacted {
            output, samples, ..
        } => match output {
            Some(block) => format!("{block} {samples} samples"),
            None => "no samples".into(),
        },
        Event::Elected { epoch } | Event::Leading { epoch, .. } => format!("epoch {epoch}"),
        Event::SteppedDown { epoch, reason } => format!("epoch {epoch}: {}", cut(reason)),
        Event::SyncFailed(why) | Event::Halted(why) | Event::Retrying(why) => cut(why),
        Event::CompactionFailed { error, .. }
        | Event::MutationFailed { error, .. }
        | Event::CoordFailed { error, .. } => cut(error),
        _ => String::new(),
    };
    let debug = format!("{e:?}");
    let name = debug.split([' ', '(', '{']).next().unwrap_or_default();
    if detail.is_empty() {
        format!("event {name}")
    } else {
        format!("event {name} {detail}")
    }
}

/// `text` cut to [`TEXT_MAX`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(TEXT_MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compactd::core::types::{Event, Millis, ReadOp, RequestId, StoreError, StoreRequest};

    #[test]
    fn summaries_name_variants_and_ids() {
        let now = Now {
            mono: Millis(1_500),
            wall: Millis(1_735_689_600_123),
        };
        let outputs = [
            Output::Store(StoreRequest::read(RequestId(12), ReadOp::Sync)),
            Output::Timer(Millis(12_345)),
            Output::Event(Event::Elected { epoch: 3 }),
            Output::Exit(2),
        ];
        let i = input(&Input::Store(
            RequestId(4),
            StoreResult::Failed(StoreError::other("x".repeat(300))),
        ));
        assert_eq!(i, format!("store#4 failed: {}…", "x".repeat(TEXT_MAX)));
        assert_eq!(
            step_line(7, now, "tick", &outputs),
            "step      7  mono       1500  wall 2025-01-01T00:00:00.123Z  tick -> \
             store#12 sync, timer 12345, event Elected epoch 3, exit 2"
        );
        assert!(step_line(8, now, "tick", &[]).ends_with("tick -> -"));
        assert_eq!(
            output(&Output::Event(Event::IterationDone)),
            "event IterationDone"
        );
    }
}
