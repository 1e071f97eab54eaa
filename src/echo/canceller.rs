//! The mic pump's side: WebRTC AEC3's linear canceller (see [`super::aec3`])
//! on the microphone's 16 kHz audio, with the loopback's 16 kHz audio as the
//! far-end reference.
//!
//! Alignment. The two pumps run on their own clocks and chunk sizes. Each
//! side's newest sample is stamped with the session time it was pumped; the
//! reference index that goes with a microphone sample follows from those two
//! stamps. The offset between the two indices is smoothed over seconds (pump
//! jitter averages out, device clock drift is followed) and the reference is
//! skipped or held back only when it is more than [`REALIGN_TOLERANCE`] away.
//! What is left, the acoustic delay from the speakers to the microphone
//! (10-500 ms), AEC3's own delay estimator finds and follows.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer as _, Observer as _};

use super::aec3::{energy, Aec3, Stage};
use super::drift::DriftReader;
use super::reference::ReferenceConsumer;
use super::EchoStats;

/// The canceller's frame: 10 ms at 16 kHz.
pub const FRAME: usize = 160;
const RATE: f64 = 16_000.0;
/// The longest the microphone's audio waits for its reference. Past this
/// the frame goes through without one (and is counted): the mic is never
/// blocked by a slow or stopped loopback.
pub const MAX_WAIT: Duration = Duration::from_millis(400);
/// The reference is fed this far ahead of the wall-clock pairing: AEC3
/// cancels only an echo that comes after its reference, and the pairing is
/// only as good as the pumps' stamps (tens of ms). With the lead the
/// canceller sees the acoustic delay plus 120 ms, well inside what AEC3's
/// delay estimator covers (measured up to 500 ms).
const LEAD: f64 = 0.120 * RATE;
/// How far the reference may wander from the smoothed alignment before it
/// is skipped or held back. Inside this AEC3 follows the delay itself.
const REALIGN_TOLERANCE: f64 = 0.080 * RATE;
/// Smoothing of the measured offset per pump chunk (~10 s time constant at
/// 20 ms chunks).
const OFFSET_SMOOTHING: f64 = 0.002;
/// Offset measurements before the reference's rate is steered to follow
/// the clocks' drift (~20 s at 20 ms chunks): before that the pairing
/// itself is still settling (its first measurements are off by 10-25 ms),
/// and steering the reference after it moved the echo path AEC3 was
/// converging on (a live run leaked 7 of 32 far-end words, ERLE 4.5 dB).
/// A drift of 100 ppm moves the echo 2 ms in that time.
const STEER_AFTER: u32 = 1_000;
/// A frame counts as far-end audio when the reference is above this RMS
/// (-50 dBFS).
const FAR_ACTIVE_RMS: f32 = 0.003;

/// Reference frames remembered to pair an echo with its source: 640 ms,
/// past the lead plus the longest acoustic delay AEC3 looks for.
const REF_HISTORY: usize = 64;

/// Far-end frames that place the echo path's level ratio before ERLE is
/// counted: 3 s.
const RATIO_WARMUP: usize = 300;

/// Echo cancellation for the microphone. Lives in the mic pump.
pub struct Canceller {
    reference: ReferenceConsumer,
    aec: Aec3,
    clock: Instant,
    stats: Arc<EchoStats>,
    /// Microphone samples waiting for their reference.
    backlog: VecDeque<f32>,
    /// Microphone samples received so far.
    mic_in: u64,
    /// The reference as taken from the ring, read at the rate that follows
    /// the clocks' drift (its `taken()` is the ring head's index).
    reader: DriftReader,
    /// Smoothed reference index minus microphone index, and how many
    /// measurements it holds.
    offset: Option<f64>,
    offset_n: u32,
    /// The reference has been brought to where the pairing wants it once
    /// (see [`Canceller::take_reference`]).
    aligned: bool,
    /// Reference frames still to hold back (fed as silence).
    hold: u64,
    mic_frame: Vec<f32>,
    ref_frame: Vec<f32>,
    out_frame: Vec<f32>,
    /// The microphone samples `out_frame` came from (4 ms older than
    /// `mic_frame`): what the ERLE compares against.
    in_frame: Vec<f32>,
    frames_since_stats: u32,
    /// Running 5th percentile of the mic-to-reference level ratio, dB.
    echo_ratio_db: Option<f64>,
    /// The ratios of the first far-end frames, until the percentile is set.
    ratio_warmup: Vec<f64>,
    /// Energy of the last [`REF_HISTORY`] reference frames, a ring.
    ref_energies: [f64; REF_HISTORY],
    ref_energy_at: usize,
}

impl Canceller {
    pub(crate) fn new(
        reference: ReferenceConsumer,
        clock: Instant,
        stats: Arc<EchoStats>,
        stage: Stage,
    ) -> Self {
        Canceller {
            reference,
            aec: Aec3::new(stage),
            clock,
            stats,
            backlog: VecDeque::with_capacity(16_000),
            mic_in: 0,
            reader: DriftReader::new(FRAME),
            offset: None,
            offset_n: 0,
            aligned: false,
            hold: 0,
            mic_frame: vec![0.0; FRAME],
            ref_frame: vec![0.0; FRAME],
            out_frame: vec![0.0; FRAME],
            in_frame: vec![0.0; FRAME],
            frames_since_stats: 0,
            echo_ratio_db: None,
            ratio_warmup: Vec::with_capacity(RATIO_WARMUP),
            ref_energies: [0.0; REF_HISTORY],
            ref_energy_at: 0,
        }
    }

    /// Takes the microphone's next 16 kHz samples and appends to `out` the
    /// cancelled audio that is ready (whole 10 ms frames, in order; up to
    /// [`MAX_WAIT`] behind the input). Never blocks. Not real-time safe.
    pub fn process(&mut self, mic: &[f32], out: &mut Vec<f32>) {
        let started = thread_cpu_ns();
        self.backlog.extend(mic.iter().copied());
        self.mic_in += mic.len() as u64;
        self.measure_offset();
        let max_backlog = (MAX_WAIT.as_secs_f64() * RATE) as usize;
        while self.backlog.len() >= FRAME {
            if !self.next_frame(self.backlog.len() > max_backlog, out) {
                break;
            }
        }
        self.stats
            .busy_ns
            .fetch_add(thread_cpu_ns().saturating_sub(started), Ordering::Relaxed);
    }

    /// At the end of the stream: everything still held back goes out, the
    /// last partial frame without cancellation.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        while self.backlog.len() >= FRAME {
            self.next_frame(true, out);
        }
        out.extend(self.backlog.drain(..));
    }

    /// Samples held back waiting for the reference.
    pub fn held(&self) -> usize {
        self.backlog.len()
    }

    /// Where the reference should be now against the microphone: both
    /// streams' newest samples were pumped about when stamped.
    fn measure_offset(&mut self) {
        let position = &self.reference.position;
        let offered = position.offered.load(Ordering::Acquire);
        if offered == 0 {
            return;
        }
        let at_us = position.offered_at_us.load(Ordering::Acquire);
        let now_us = self.clock.elapsed().as_micros() as u64;
        let since = now_us.saturating_sub(at_us) as f64 / 1e6;
        // The reference index at this moment, had its pump run just now.
        let ref_now = offered as f64 + since * RATE;
        let measured = ref_now - self.mic_in as f64;
        // The mean of the measurements so far, then a slow average: the
        // first one alone was off by 10-25 ms (the pumps' chunks jitter by
        // that much), and a 10 s average starting there kept moving for
        // tens of seconds.
        self.offset_n = self.offset_n.saturating_add(1);
        let gain = (1.0 / f64::from(self.offset_n)).max(OFFSET_SMOOTHING);
        self.offset = Some(match self.offset {
            None => measured,
            Some(o) => o + gain * (measured - o),
        });
    }

    /// One frame through the canceller. False when the frame must wait for
    /// its reference (and may still wait).
    fn next_frame(&mut self, overdue: bool, out: &mut Vec<f32>) -> bool {
        let have_ref = self.take_reference(overdue);
        if !have_ref && !overdue {
            return false;
        }
        for (dst, src) in self.mic_frame.iter_mut().zip(self.backlog.drain(..FRAME)) {
            *dst = src;
        }
        if !have_ref {
            self.count_without_reference();
            self.ref_frame.fill(0.0);
        }
        self.aec.process(
            &self.ref_frame,
            &self.mic_frame,
            &mut self.out_frame,
            &mut self.in_frame,
        );
        self.account();
        out.extend_from_slice(&self.out_frame);
        true
    }

    /// Fills `ref_frame` with the reference for the next microphone frame.
    /// False when it has not arrived yet.
    fn take_reference(&mut self, overdue: bool) -> bool {
        let Some(offset) = self.offset else {
            return false;
        };
        if self.hold > 0 {
            self.hold -= 1;
            self.ref_frame.fill(0.0);
            self.count_without_reference();
            return true;
        }
        let mic_index = (self.mic_in - self.backlog.len() as u64) as f64;
        let want = mic_index + offset + LEAD;
        let drift = self.reader.position() - want;
        if !self.aligned {
            // The first alignment: skip to where the pairing wants the
            // reference, over as many frames as it takes for the loopback to
            // deliver that much. (Done in one frame, it stopped wherever the
            // ring then ended: a live run started 74 ms off, inside the
            // tolerance, and was realigned by 60 ms seconds later, in the
            // far end's speech, which then leaked while the filter
            // converged again.)
            self.skip_to(want);
            self.aligned = self.reader.position() >= want - FRAME as f64;
        } else if drift < -REALIGN_TOLERANCE {
            // The reference is behind: skip what is past.
            let before = self.reader.position();
            self.skip_to(want);
            let skipped = (self.reader.position() - before).max(0.0) as u64;
            if skipped > 0 {
                self.aec.realigned();
            }
            self.stats
                .realigned_samples
                .fetch_add(skipped, Ordering::Relaxed);
        } else if drift > REALIGN_TOLERANCE {
            // The reference is ahead: hold it back with silence.
            let frames = (drift as usize / FRAME).max(1) as u64;
            self.stats
                .realigned_samples
                .fetch_add(frames * FRAME as u64, Ordering::Relaxed);
            self.hold = frames - 1;
            self.aec.realigned();
            self.ref_frame.fill(0.0);
            self.count_without_reference();
            return true;
        } else if self.offset_n >= STEER_AFTER {
            // Inside the tolerance: follow the clocks' drift smoothly.
            self.reader.steer(drift);
        }
        let needed = self.reader.needed(FRAME);
        let available = self.reference.ring.occupied_len();
        if available < needed {
            if overdue && available > 0 {
                // Keep the ring's index honest: the partial is dropped.
                let from = self.reader.taken() + self.reference.ring.skip(available) as u64;
                self.reader.restart_at(from);
            }
            return false;
        }
        self.reader
            .push(self.reference.ring.pop_iter().take(needed));
        self.reader.read(&mut self.ref_frame);
        true
    }

    /// Skips the reference forward to index `want` (as far as the ring
    /// holds).
    fn skip_to(&mut self, want: f64) {
        let skip = (want - self.reader.taken() as f64).max(0.0) as usize;
        if skip == 0 {
            return;
        }
        let from = self.reader.taken() + self.reference.ring.skip(skip) as u64;
        self.reader.restart_at(from);
    }

    fn count_without_reference(&self) {
        self.stats
            .frames_without_reference
            .fetch_add(1, Ordering::Relaxed);
    }

    fn account(&mut self) {
        let stats = &self.stats;
        stats.frames.fetch_add(1, Ordering::Relaxed);
        // The reference frame that the echo in this microphone frame came
        // from: as far back as AEC3's delay estimate (plus its 4 ms framing).
        self.ref_energies[self.ref_energy_at % REF_HISTORY] = energy(&self.ref_frame);
        let back = (self.aec.delay_ms().max(0) as usize + 4) / 10;
        let ref_energy = self.ref_energies
            [(self.ref_energy_at + REF_HISTORY - back.min(REF_HISTORY - 1)) % REF_HISTORY];
        self.ref_energy_at += 1;
        let ref_rms = (ref_energy / FRAME as f64).sqrt() as f32;
        if ref_rms > FAR_ACTIVE_RMS {
            stats.far_frames.fetch_add(1, Ordering::Relaxed);
            // ERLE is measured where the microphone holds the echo alone.
            // Those frames sit at the bottom of the mic-to-reference level
            // ratio (the echo path's loss); local speech over the far end
            // (double talk) lifts it. A running 5th percentile of the ratio
            // tracks the loss (slow to rise, so a long stretch of double
            // talk does not lift it); frames within 3 dB of it count.
            let mic_energy = energy(&self.in_frame);
            let ratio_db = 10.0 * (mic_energy.max(1e-12) / ref_energy).log10();
            let Some(q) = self.echo_ratio_db.as_mut() else {
                // The first 3 s of far end (while AEC3 converges anyway)
                // place the percentile; tracking alone would take minutes
                // to climb from a first frame far below it. Only once AEC3
                // has found the echo's delay: before that the reference
                // energy is read at its default 16 ms, which for a long
                // echo path (100-200 ms) pairs the mic with the wrong frames
                // and placed the percentile so low that no frame came
                // within 3 dB of it ("ERLE not measured").
                if !self.aec.echo_found() {
                    return self.publish_delay();
                }
                self.ratio_warmup.push(ratio_db);
                if self.ratio_warmup.len() == RATIO_WARMUP {
                    self.ratio_warmup.sort_by(f64::total_cmp);
                    self.echo_ratio_db = Some(self.ratio_warmup[RATIO_WARMUP / 20]);
                }
                return self.publish_delay();
            };
            // Steps of 0.2 dB down, 0.01 dB up: settles where 5% lie below.
            *q += if ratio_db < *q { -0.2 } else { 0.01 };
            if ratio_db <= *q + 3.0 {
                stats.add_echo_frame(mic_energy, energy(&self.out_frame));
            }
        }
        self.publish_delay();
    }

    fn publish_delay(&mut self) {
        self.frames_since_stats += 1;
        if self.frames_since_stats >= 100 {
            self.frames_since_stats = 0;
            self.stats
                .delay_ms
                .store(i64::from(self.aec.delay_ms()), Ordering::Relaxed);
            self.stats.drift_decippm.store(
                (self.reader.drift_ppm() * 10.0).round() as i64,
                Ordering::Relaxed,
            );
        }
    }
}

/// CPU time of the calling thread, ns (not wall time: a preempted pump
/// would otherwise count other processes' work as echo handling).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
