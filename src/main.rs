//! The `compactd` command line: argument parsing and printing only; the work lives in the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use compactd::duration::parse_duration_ms;
use compactd::tools;
use compactd::tsdb::chunks::DEFAULT_SEGMENT_SIZE;
use compactd::tsdb::compact::CompactOptions;

/// A highly available compactor for Prometheus/Thanos block buckets.
#[derive(Parser)]
#[command(name = "compactd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Offline tools that work on local block directories.
    #[command(subcommand)]
    Tools(ToolsCommand),
}

#[derive(Subcommand)]
enum ToolsCommand {
    /// Write realistic sample blocks (counters with resets, gauges, several metrics).
    Generate(GenerateArgs),
    /// Compact block directories into one new block.
    Compact(CompactArgs),
    /// Print a block's meta and contents and verify every checksum; non-zero exit on damage.
    Inspect(InspectArgs),
}

#[derive(Args)]
struct GenerateArgs {
    /// Directory to write the blocks into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Number of series.
    #[arg(long)]
    series: usize,
    /// Time span to cover, in hours.
    #[arg(long)]
    hours: f64,
    /// Block length; blocks are aligned to multiples of it.
    #[arg(long, default_value = "2h", value_parser = duration_ms)]
    block_duration: u64,
    /// First scrape time, Unix milliseconds.
    #[arg(long, default_value_t = 1_735_689_600_000)]
    start_ms: i64,
    /// Time between two samples of a series.
    #[arg(long, default_value = "15s", value_parser = duration_ms)]
    scrape_interval: u64,
    /// External labels `k=v,k2=v2`; adds the Thanos section to each block.
    #[arg(long, default_value = "")]
    external_labels: String,
    /// Seed of every random choice (same seed, same blocks).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct CompactArgs {
    /// Directory to write the new block into.
    #[arg(long)]
    out: PathBuf,
    /// Maximum size of a chunk segment file, in bytes.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SIZE, hide = true)]
    segment_size: u64,
    /// The block directories to compact.
    #[arg(required = true)]
    blocks: Vec<PathBuf>,
}

#[derive(Args)]
struct InspectArgs {
    /// The block directory.
    block: PathBuf,
}

fn duration_ms(s: &str) -> Result<u64, String> {
    parse_duration_ms(s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tools(ToolsCommand::Generate(a)) => generate(a),
        Command::Tools(ToolsCommand::Compact(a)) => compact(a),
        Command::Tools(ToolsCommand::Inspect(a)) => inspect(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn generate(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let opts = tools::generate::GenerateOptions {
        out: a.out,
        series: a.series,
        hours: a.hours,
        block_duration_ms: i64::try_from(a.block_duration)?,
        start_ms: a.start_ms,
        scrape_interval_ms: i64::try_from(a.scrape_interval)?,
        external_labels: tools::generate::parse_external_labels(&a.external_labels)
            .map_err(anyhow::Error::msg)?,
        seed: a.seed,
    };
    let blocks = tools::generate::generate(&opts)?;
    for b in &blocks {
        let s = &b.meta.stats;
        println!(
            "{}  [{}, {})  {} series  {} chunks  {} samples",
            b.meta.ulid,
            b.meta.min_time,
            b.meta.max_time,
            s.num_series,
            s.num_chunks,
            s.num_samples
        );
    }
    let total: u64 = blocks.iter().map(|b| b.meta.stats.num_samples).sum();
    println!(
        "wrote {} blocks ({total} samples) to {}",
        blocks.len(),
        opts.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn compact(a: CompactArgs) -> anyhow::Result<ExitCode> {
    let opts = CompactOptions {
        segment_size: a.segment_size,
        ..CompactOptions::default()
    };
    let report = tools::compact::run(&a.blocks, &a.out, &opts)?;
    print!("{}", tools::compact::render(&report, a.blocks.len()));
    Ok(ExitCode::SUCCESS)
}

fn inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let ins = tools::inspect::inspect(&a.block)?;
    print!("{}", ins.summary);
    if ins.problems.is_empty() {
        println!("OK: every checksum verified, every chunk decoded");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &ins.problems {
        println!("PROBLEM: {p}");
    }
    println!("CORRUPT: {} problems found", ins.problems.len());
    Ok(ExitCode::FAILURE)
}
