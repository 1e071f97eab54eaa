//! Load-adaptive inference: how a worker should decode given how busy the
//! cores are and how far behind it is. A pure decision, no I/O, so the
//! streaming worker can call it before every pass and tests can drive it.
//!
//! # Why these levers
//!
//! - **Threads.** ggml's threads wait for each other at every graph step.
//!   When another process holds a core, one of two threads is often not
//!   scheduled and the other waits for it: on this 2-core machine with load
//!   average 7, `hark transcribe -t 2 assets/weather.wav` took 20.9 s
//!   (11.0 s of CPU) against 1.4-2.6 s with `-t 1`. So threads never exceed
//!   the cores that are free.
//! - **Partial passes.** A partial pass only refreshes the live line; the
//!   final pass is what gets committed. When the worker is behind, partials
//!   are spent first: fewer of them, then none, until the lag is back.
//!
//! Hysteresis: a lever comes back only once the signal is well below the
//! bound that moved it ([`LoadPolicy`]), so a load hovering at a bound does
//! not flip the plan every pass.
//!
//! Not real-time safe (never called there; it allocates nothing though).

/// One measurement, taken by the caller before a pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSignal {
    /// Cores of the machine (or of the process's CPU set).
    pub cores: usize,
    /// Threads of *other* processes ready to run, averaged over the last
    /// seconds (from `/proc/stat` `procs_running`, minus this process's own).
    pub others_runnable: f32,
    /// How far the worker's committed text is behind the audio, seconds.
    pub lag_s: f64,
}

/// How often partial passes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Partials {
    /// At the policy's normal step.
    Every,
    /// Every other step (the interval doubled).
    Sparse,
    /// None: only final passes, until the lag is back under bound.
    Off,
}

/// Why the plan is below the nominal one (shown in the status line and the
/// metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degradation {
    /// Other processes hold the cores: fewer threads.
    CoresBusy,
    /// Behind real time: fewer or no partial passes.
    Behind,
    /// Both at once.
    CoresBusyAndBehind,
}

impl Degradation {
    /// A short label for the status line and logs.
    pub fn label(self) -> &'static str {
        match self {
            Degradation::CoresBusy => "cores busy: fewer threads",
            Degradation::Behind => "behind: fewer partials",
            Degradation::CoresBusyAndBehind => "cores busy and behind",
        }
    }
}

/// What the worker should do for its next pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan {
    pub threads: usize,
    pub partials: Partials,
    /// Abort a partial pass in flight when the utterance ends (always on
    /// while partials are degraded: the final pass is what matters).
    pub abort_partial_at_end: bool,
    /// `None` when nothing is degraded.
    pub degraded: Option<Degradation>,
}

/// The bounds of the decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadPolicy {
    /// Threads when the cores are free (the user's `--threads`).
    pub max_threads: usize,
    /// Lag at which partials go sparse.
    pub sparse_at_s: f64,
    /// Lag at which partials stop.
    pub off_at_s: f64,
    /// A degraded partials level comes back one step only once the lag is
    /// below this fraction of the bound that set it.
    pub recover_fraction: f64,
    /// Free cores needed per thread: a thread is granted only where at
    /// least this much of a core is free (other runnable threads counted
    /// against it).
    pub core_per_thread: f32,
}

impl Default for LoadPolicy {
    fn default() -> Self {
        LoadPolicy {
            max_threads: 2,
            sparse_at_s: 1.0,
            off_at_s: 2.0,
            recover_fraction: 0.5,
            core_per_thread: 0.75,
        }
    }
}

impl LoadPolicy {
    /// The plan before any measurement: everything nominal.
    pub fn nominal(&self) -> LoadPlan {
        LoadPlan {
            threads: self.max_threads.max(1),
            partials: Partials::Every,
            abort_partial_at_end: true,
            degraded: None,
        }
    }

    /// Decides the next pass's plan from a measurement and the plan in
    /// force (for hysteresis).
    pub fn decide(&self, signal: LoadSignal, previous: &LoadPlan) -> LoadPlan {
        let threads = self.threads_for(signal);
        let partials = self.partials_for(signal.lag_s, previous.partials);
        let cores_busy = threads < self.max_threads.max(1);
        let behind = partials != Partials::Every;
        let degraded = match (cores_busy, behind) {
            (false, false) => None,
            (true, false) => Some(Degradation::CoresBusy),
            (false, true) => Some(Degradation::Behind),
            (true, true) => Some(Degradation::CoresBusyAndBehind),
        };
        LoadPlan {
            threads,
            partials,
            abort_partial_at_end: true,
            degraded,
        }
    }

    /// Threads that fit in the cores other processes leave free: never
    /// more than `max_threads`, never fewer than one.
    fn threads_for(&self, signal: LoadSignal) -> usize {
        // An unusable reading (NaN, infinite) counts as busy: one thread
        // is never the catastrophic choice, two on a busy machine is.
        let free = signal.cores as f32 - signal.others_runnable;
        let fit = if signal.others_runnable.is_finite() && self.core_per_thread > 0.0 {
            (free / self.core_per_thread).floor().max(0.0) as usize
        } else {
            1
        };
        fit.clamp(1, self.max_threads.max(1))
    }

    /// Partials level from the lag: up at once, down one step at a time
    /// once the lag is under `recover_fraction` of the bound that set it.
    fn partials_for(&self, lag_s: f64, previous: Partials) -> Partials {
        let wanted = if lag_s >= self.off_at_s {
            Partials::Off
        } else if lag_s >= self.sparse_at_s {
            Partials::Sparse
        } else {
            Partials::Every
        };
        if wanted >= previous {
            return wanted;
        }
        match previous {
            Partials::Off if lag_s < self.off_at_s * self.recover_fraction => Partials::Sparse,
            Partials::Sparse if lag_s < self.sparse_at_s * self.recover_fraction => Partials::Every,
            level => level,
        }
    }
}

/// Reads `procs_running` from `/proc/stat`: threads of the whole machine
/// ready to run right now, the calling one included. `None` where there is
/// no such file (not Linux).
pub fn procs_running() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|line| line.strip_prefix("procs_running "))
        .and_then(|n| n.trim().parse().ok())
}

/// Threads of this process that are running or ready to run right now
/// (state `R` in `/proc/self/task/*/stat`), so [`LoadMeter`] does not count
/// hark's own threads (whisper.cpp's team finishing a pass, the pump) as
/// other processes' load.
pub fn own_running_threads() -> Option<u32> {
    let mut running = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // The state follows the parenthesised name, which may hold spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state == Some('R') {
            running += 1;
        }
    }
    Some(running)
}

/// How long the load reading takes to follow a change (time constant).
const LOAD_TAU_S: f64 = 2.0;

/// Other processes' runnable threads, smoothed over the last seconds: the
/// load half of a [`LoadSignal`], read by the worker before each pass.
#[derive(Debug)]
pub struct LoadMeter {
    cores: usize,
    others: Option<f32>,
    last: std::time::Instant,
}

impl LoadMeter {
    pub fn new() -> Self {
        LoadMeter {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            others: None,
            last: std::time::Instant::now(),
        }
    }

    /// Takes one reading and returns the signal with `lag_s`. Where `/proc`
    /// cannot be read the machine counts as idle (the lag lever still works).
    pub fn signal(&mut self, lag_s: f64) -> LoadSignal {
        let now = std::time::Instant::now();
        let reading = match (procs_running(), own_running_threads()) {
            (Some(all), Some(own)) => all.saturating_sub(own) as f32,
            _ => 0.0,
        };
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let weight = (1.0 - (-dt / LOAD_TAU_S).exp()) as f32;
        let others = match self.others {
            None => reading,
            Some(previous) => previous + (reading - previous) * weight,
        };
        self.others = Some(others);
        LoadSignal {
            cores: self.cores,
            others_runnable: others,
            lag_s,
        }
    }
}

impl Default for LoadMeter {
    fn default() -> Self {
        Self::new()
    }
}

/// Marks the calling thread as a batch thread (Linux `SCHED_BATCH`, nice
/// unchanged; threads it starts later, whisper.cpp's OpenMP team included,
/// inherit it): the scheduler never lets it preempt a thread that wakes up,
/// so the pump and capture (woken by audio) run first, while against other
/// processes it keeps its fair share of the CPU. A lower nice value (5) was
/// measured first and starved inference behind two busy processes
/// (benches/memory.rs: latency p50 42.7 s with one busy process, 84.0 s
/// with two, load average 6-8). Call first thing on the worker thread.
/// Returns whether the policy was set; elsewhere than Linux it does nothing.
pub fn batch_current_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; param is a valid struct.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(others: f32, lag_s: f64) -> LoadSignal {
        LoadSignal {
            cores: 2,
            others_runnable: others,
            lag_s,
        }
    }

    #[test]
    fn idle_cores_and_no_lag_is_nominal() {
        let policy = LoadPolicy::default();
        let plan = policy.decide(signal(0.0, 0.2), &policy.nominal());
        assert_eq!(plan, policy.nominal());
        assert_eq!(plan.threads, 2);
    }

    #[test]
    fn busy_cores_take_threads_away_down_to_one() {
        let policy = LoadPolicy::default();
        let nominal = policy.nominal();
        // One other process on one of two cores: one thread.
        let plan = policy.decide(signal(1.0, 0.0), &nominal);
        assert_eq!(plan.threads, 1);
        assert_eq!(plan.degraded, Some(Degradation::CoresBusy));
        // Two or seven others: still one, never zero.
        assert_eq!(policy.decide(signal(2.0, 0.0), &nominal).threads, 1);
        assert_eq!(policy.decide(signal(7.0, 0.0), &nominal).threads, 1);
        // A brief blip below a quarter core keeps both threads.
        assert_eq!(policy.decide(signal(0.2, 0.0), &nominal).threads, 2);
        // More cores free than max_threads: capped.
        let wide = LoadSignal {
            cores: 8,
            others_runnable: 0.0,
            lag_s: 0.0,
        };
        assert_eq!(policy.decide(wide, &nominal).threads, 2);
        // Nonsense input (NaN) still gives one thread.
        assert_eq!(policy.decide(signal(f32::NAN, 0.0), &nominal).threads, 1);
    }

    #[test]
    fn lag_spends_partials_first_and_they_come_back_with_hysteresis() {
        let policy = LoadPolicy::default();
        let mut plan = policy.nominal();
        let mut levels = Vec::new();
        for lag in [0.5, 1.2, 2.5, 1.5, 0.9, 0.6, 0.4, 0.3] {
            plan = policy.decide(signal(0.0, lag), &plan);
            levels.push(plan.partials);
        }
        use Partials::*;
        // Up at once (1.2 -> sparse, 2.5 -> off); down only under half the
        // bound (off stays until lag < 1.0, sparse until lag < 0.5).
        assert_eq!(
            levels,
            [Every, Sparse, Off, Off, Sparse, Sparse, Every, Every]
        );
        assert_eq!(
            policy.decide(signal(0.0, 3.0), &policy.nominal()).degraded,
            Some(Degradation::Behind)
        );
    }

    #[test]
    fn a_lag_hovering_at_a_bound_does_not_flap() {
        let policy = LoadPolicy::default();
        let mut plan = policy.nominal();
        let mut changes = 0;
        for i in 0..100 {
            let lag = if i % 2 == 0 { 1.05 } else { 0.95 };
            let next = policy.decide(signal(0.0, lag), &plan);
            changes += usize::from(next.partials != plan.partials);
            plan = next;
        }
        assert_eq!(changes, 1, "only the first crossing changes the plan");
        assert_eq!(plan.partials, Partials::Sparse);
    }

    #[test]
    fn both_levers_at_once_say_so() {
        let policy = LoadPolicy::default();
        let plan = policy.decide(signal(2.0, 2.5), &policy.nominal());
        assert_eq!((plan.threads, plan.partials), (1, Partials::Off));
        assert_eq!(plan.degraded, Some(Degradation::CoresBusyAndBehind));
        assert!(plan.abort_partial_at_end);
        assert!(!plan.degraded.unwrap().label().is_empty());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn batch_policy_touches_only_the_calling_thread() {
        let policy_of = |stat: String| -> i64 {
            // Field 41 of /proc/.../stat (the scheduling policy), counted
            // after the ")" of the name, which ends field 2.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after.split_whitespace().nth(38).unwrap().parse().unwrap()
        };
        let stat = || std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let before = policy_of(stat());
        let inside = std::thread::spawn(move || {
            assert!(batch_current_thread());
            policy_of(stat())
        })
        .join()
        .unwrap();
        assert_eq!(inside, i64::from(libc::SCHED_BATCH));
        assert_eq!(policy_of(stat()), before, "the calling thread only");
    }

    #[test]
    fn procs_running_counts_at_least_this_thread() {
        // On Linux /proc/stat exists and the reading thread is running.
        if std::path::Path::new("/proc/stat").exists() {
            assert!(procs_running().unwrap() >= 1);
        }
    }
}
