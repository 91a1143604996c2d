//! The `compactd run` command line of the integration tests, built in one place: the bucket
//! config and an HTTP port the kernel picks, then what each test adds (data dir, `--wait`,
//! node name, any other flag), in the order it adds them.
//!
//! Argument lists whose spelling is the point of a test (Thanos' Helm chart list in
//! `tests/thanos_flags.rs`, flag-parsing refusals) stay written out where they are tested.

use std::path::Path;
use std::process::{Command, Output};

use super::fs_config;

/// The arguments of one `compactd run`, built flag by flag:
/// `CompactdRun::new(&config).data_dir(&data).wait().flag("--delete-delay", "0s")`, then
/// [`args`](Self::args), [`command`](Self::command) or [`output`](Self::output).
#[derive(Clone, Debug)]
pub struct CompactdRun {
    /// `run`, or Thanos' name `compact`.
    subcommand: String,
    /// Everything after the subcommand.
    flags: Vec<String>,
}

impl CompactdRun {
    /// `compactd run --objstore.config <config> --http-address 127.0.0.1:0` (HTTP on a port
    /// the kernel picks, so that concurrent tests never collide).
    pub fn new(config: &str) -> Self {
        CompactdRun {
            subcommand: "run".into(),
            flags: Vec::new(),
        }
        .flag("--objstore.config", config)
        .flag("--http-address", "127.0.0.1:0")
    }

    /// [`new`](Self::new) on the filesystem bucket in `bucket` ([`fs_config`]).
    pub fn on_dir(bucket: &Path) -> Self {
        CompactdRun::new(&fs_config(bucket))
    }

    /// Runs it as `compactd <name>`: Thanos' command name `compact` is the other one.
    pub fn subcommand(mut self, name: &str) -> Self {
        self.subcommand = name.into();
        self
    }

    /// `--data-dir <dir>`.
    pub fn data_dir(self, dir: &Path) -> Self {
        self.flag("--data-dir", dir.to_str().expect("a UTF-8 data dir"))
    }

    /// `--node.name <name>`.
    pub fn node(self, name: &str) -> Self {
        self.flag("--node.name", name)
    }

    /// `--wait`: keep running, one iteration every `--wait-interval` (Thanos' 5m unless
    /// [`wait_interval`](Self::wait_interval) sets it).
    pub fn wait(self) -> Self {
        self.arg("--wait")
    }

    /// `--wait-interval <interval>`.
    pub fn wait_interval(self, interval: &str) -> Self {
        self.flag("--wait-interval", interval)
    }

    /// `<name> <value>`.
    pub fn flag(self, name: &str, value: &str) -> Self {
        self.arg(name).arg(value)
    }

    /// One argument as given: a switch (`--downsampling.disable`) or `--name=value`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.flags.push(arg.to_string());
        self
    }

    /// Each of `args`, as given (a test's extra flags).
    pub fn extra<S: AsRef<str>>(self, args: &[S]) -> Self {
        args.iter().fold(self, |run, a| run.arg(a.as_ref()))
    }

    /// The whole argument list, the subcommand first.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![self.subcommand.clone()];
        args.extend(self.flags.iter().cloned());
        args
    }

    /// The `compactd` binary of this test run with these arguments, ready to spawn.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_compactd"));
        cmd.args(self.args());
        cmd
    }

    /// Runs it to the end and returns its output.
    pub fn output(&self) -> Output {
        self.command().output().expect("run compactd")
    }
}
