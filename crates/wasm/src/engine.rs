//! The one wasmtime [`Engine`] of the executor, its configuration, and the epoch ticker.
//!
//! Configuration that changes compiled code is hashed into every cached artifact's name
//! ([`engine_hash`]), so a change of settings (or of wasmtime) recompiles instead of loading
//! an incompatible artifact.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A running guest yields to the async executor once per tick
/// (so a spinning guest never holds a worker thread for longer) and checks its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Limits of the pooling allocator. Slots are virtual memory reserved once at start-up;
/// a slot is reused (copy-on-write reset) by the next instance.
#[derive(Debug, Clone)]
pub struct PoolLimits {
    /// Component and core instances alive at once.
    pub instances: u32,
    /// Linear memories alive at once.
    pub memories: u32,
    /// Tables alive at once.
    pub tables: u32,
    /// Bytes of a linear memory kept resident when its slot is reused: the pages a guest
    /// dirtied (found with Linux's `PAGEMAP_SCAN` where available) are reset in place with
    /// `memset`/`memcpy` instead of `madvise`, so the next instance takes no page faults
    /// and the host no TLB shootdowns. Costs up to this much RSS per warm slot.
    pub memory_keep_resident: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            instances: 1000,
            memories: 1000,
            tables: 1000,
            memory_keep_resident: 2 << 20,
        }
    }
}

pub(crate) fn build(limits: &PoolLimits) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // `wasi:http/proxy` (0.2) guests are called one at a time. With concurrency support on,
    // every call goes through the component-model-async scheduler, which parks a worker
    // fiber in the store; dropping the store then resumes that fiber with an error (and a
    // captured backtrace when RUST_BACKTRACE is set) -- a large share of a small request.
    config.concurrency_support(false);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Copy-on-write images make instantiation of big modules (CPython, SpiderMonkey) cheap.
    config.memory_init_cow(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(limits.instances)
        .total_core_instances(limits.instances)
        .total_stacks(limits.instances)
        .total_memories(limits.memories)
        .total_tables(limits.tables)
        // wasm32 cannot address more; the function's memory size is enforced per store.
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(limits.memory_keep_resident)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// A stable hash of everything in the engine's configuration that affects compiled code
/// (wasmtime's own compatibility hash, which includes its version).
pub(crate) fn engine_hash(engine: &Engine) -> String {
    // `DefaultHasher::new()` uses fixed keys: the same input gives the same hash in every
    // process of the same build, which is all a cache name needs.
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Ticks without a running guest after which the ticker parks until the next guest starts.
const IDLE_TICKS: u32 = 100;

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] while guests run (the
/// epoch only matters to a running guest), and parks after [`IDLE_TICKS`] idle ticks so
/// an idle executor costs no CPU. Stops when dropped.
pub(crate) struct Ticker {
    shared: Arc<TickShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickShared {
    /// Guests running now (held by [`Running`] guards).
    running: AtomicUsize,
    /// The ticker is parked (or about to park): the next guest must unpark it.
    parked: AtomicBool,
    stop: AtomicBool,
}

/// Keeps the ticker ticking while a guest runs.
pub(crate) struct Running {
    shared: Arc<TickShared>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ticker {
    pub(crate) fn start(engine: Engine) -> std::io::Result<Ticker> {
        let shared = Arc::new(TickShared {
            running: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gust-wasm-epoch".into())
            .spawn(move || {
                let mut idle = 0u32;
                while !s.stop.load(Ordering::SeqCst) {
                    if s.running.load(Ordering::SeqCst) > 0 {
                        idle = 0;
                    } else {
                        idle += 1;
                    }
                    if idle > IDLE_TICKS {
                        // Announce the park first, then look again: a guest that starts in
                        // between either sees `parked` (and unparks, which makes this park
                        // return at once) or is seen here.
                        s.parked.store(true, Ordering::SeqCst);
                        if s.running.load(Ordering::SeqCst) == 0 && !s.stop.load(Ordering::SeqCst) {
                            std::thread::park();
                        }
                        s.parked.store(false, Ordering::SeqCst);
                        idle = 0;
                        continue;
                    }
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a guest as running until the guard is dropped, waking the ticker if parked.
    pub(crate) fn running(&self) -> Running {
        self.shared.running.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst) {
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
        Running {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticker_parks_when_idle_and_wakes_for_a_guest() {
        let engine = Engine::default();
        let ticker = Ticker::start(engine).unwrap();
        let t0 = std::time::Instant::now();
        while !ticker.shared.parked.load(Ordering::SeqCst) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ticker never parked"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let guard = ticker.running();
        let t0 = std::time::Instant::now();
        while ticker.shared.parked.load(Ordering::SeqCst) {
            assert!(t0.elapsed() < Duration::from_secs(10), "ticker never woke");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(guard);
        drop(ticker);
    }
}
