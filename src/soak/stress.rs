//! CPU stress: busy threads that compete with the pipeline for the cores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::SoakError;

/// N spinning threads at normal priority; dropping them stops them.
pub struct Stress {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Stress {
    pub fn start(threads: usize) -> Result<Stress, SoakError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for i in 0..threads {
            let stop = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name(format!("soak-stress-{i}"))
                .spawn(move || spin(&stop))
                .map_err(SoakError::Thread)?;
            handles.push(handle);
        }
        Ok(Stress {
            stop,
            threads: handles,
        })
    }
}

impl Drop for Stress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Integer work that the optimiser cannot drop, until stopped.
fn spin(stop: &AtomicBool) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
    }
    x
}
