//! A cgroup v1 `cpu` + `memory` group with the DaemonSet's limits, for
//! running the agent under them (root and writable cgroup v1 controllers,
//! as on netprobe's test machines). Removed when dropped.

use std::path::PathBuf;
use std::process::Command;

const ROOT: &str = "/sys/fs/cgroup";

/// The group's two directories.
pub struct Cgroup {
    cpu: PathBuf,
    memory: PathBuf,
}

fn write(path: &std::path::Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

fn read_u64(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

impl Cgroup {
    /// Creates `netprobe-<name>-<pid>` under the v1 `cpu` and `memory`
    /// controllers with a CPU quota of `cpu_millis` (per 100 ms period) and
    /// a hard memory limit. Says why when it cannot (not root, no cgroup v1).
    pub fn create(name: &str, cpu_millis: u64, memory_bytes: u64) -> Result<Cgroup, String> {
        let leaf = format!("netprobe-{name}-{}", std::process::id());
        let cpu = PathBuf::from(ROOT).join("cpu").join(&leaf);
        let memory = PathBuf::from(ROOT).join("memory").join(&leaf);
        for d in [&cpu, &memory] {
            std::fs::create_dir_all(d).map_err(|e| {
                format!(
                    "cannot create {} ({e}): these measurements need root and writable cgroup v1 `cpu` and `memory` controllers",
                    d.display()
                )
            })?;
        }
        let g = Cgroup { cpu, memory };
        write(&g.cpu.join("cpu.cfs_period_us"), "100000")?;
        write(&g.cpu.join("cpu.cfs_quota_us"), &(cpu_millis * 100).to_string())?;
        write(&g.memory.join("memory.limit_in_bytes"), &memory_bytes.to_string())?;
        // No swap to hide in: the limit is the limit.
        let _ = write(&g.memory.join("memory.swappiness"), "0");
        Ok(g)
    }

    /// `program` started inside the group: a shell moves itself in, then
    /// execs the program, so that the pid is the program's and every page it
    /// touches is charged to the group from the start.
    pub fn command(&self, program: &str) -> Command {
        let script = format!(
            "echo $$ > {} && echo $$ > {} && exec \"$0\" \"$@\"",
            self.cpu.join("cgroup.procs").display(),
            self.memory.join("cgroup.procs").display()
        );
        let mut c = Command::new("sh");
        c.args(["-c", &script, program]);
        c
    }

    /// The group's peak memory, as the limit counts it (page cache included).
    pub fn max_usage_bytes(&self) -> u64 {
        read_u64(&self.memory.join("memory.max_usage_in_bytes"))
    }

    /// Times the limit was hit (the kernel reclaimed or failed a charge).
    pub fn failcnt(&self) -> u64 {
        read_u64(&self.memory.join("memory.failcnt"))
    }

    /// Whether the OOM killer fired in the group.
    pub fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.memory.join("memory.oom_control"))
            .map(|s| s.lines().any(|l| l.starts_with("oom_kill ") && !l.ends_with(" 0")))
            .unwrap_or(false)
    }

    /// (periods throttled, total throttled time in ms) from cpu.stat.
    pub fn throttled(&self) -> (u64, f64) {
        let stat = std::fs::read_to_string(self.cpu.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse::<u64>().unwrap_or(0)))
                .unwrap_or(0)
        };
        (field("nr_throttled "), field("throttled_time ") as f64 / 1e6)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Empty once the agent has exited; rmdir removes a cgroup.
        for d in [&self.cpu, &self.memory] {
            let _ = std::fs::remove_dir(d);
        }
    }
}
