//! The one wasmtime [`Engine`] of the executor, its configuration, and the epoch ticker.
//!
//! Configuration that changes compiled code is hashed into every cached artifact's name
//! ([`engine_hash`]), so a change of settings (or of wasmtime) recompiles instead of loading
//! an incompatible artifact.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            instances: 1000,
            memories: 1000,
            tables: 1000,
        }
    }
}

pub(crate) fn build(limits: &PoolLimits) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
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
        .max_memory_size(4 << 30);
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

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gust-wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
