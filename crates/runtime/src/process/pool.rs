//! The pool of execution environments and the concurrency bookkeeping, as a plain struct.
//!
//! [`PoolState`] lives behind the invoker's mutex and does no I/O: every method decides, and
//! returns the environments the caller must stop once the lock is released. It is generic over
//! the environment type so it can be tested without processes.
//!
//! Vocabulary:
//! - *busy*: invocations holding a concurrency slot (Lambda's concurrent executions). The
//!   function's reserved concurrency and the global limit bound it.
//! - *live*: environments that exist or are being started, busy or idle.
//! - *generation*: a function's code and configuration as the pool last saw them. Environments
//!   of an older generation are never handed out again: idle ones are stopped when the
//!   generation changes, busy ones when their invocation ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gust_model::FunctionRecord;
use tokio::time::Instant;

use crate::InvokeError;

/// What the pool needs to know about an environment.
pub(crate) trait Pooled {
    fn id(&self) -> &str;
    fn generation(&self) -> u64;
    fn provisioned(&self) -> bool;
    /// False once the process has exited; such an environment is never handed out.
    fn alive(&self) -> bool;
}

pub(crate) use crate::api::{GLOBAL_LIMIT, RESERVED_LIMIT};

/// Whether two records describe the same code and configuration.
pub(crate) fn same_generation(a: &FunctionRecord, b: &FunctionRecord) -> bool {
    a.code_id == b.code_id && a.revision_id == b.revision_id && a.config == b.config
}

/// How an invocation gets its environment.
#[derive(Debug)]
pub(crate) enum Lease<E> {
    /// An idle environment of the current generation.
    Warm(Arc<E>),
    /// None idle: the caller starts one of this generation and reports back with
    /// [`PoolState::cold_started`] or [`PoolState::start_failed`].
    Cold,
}

#[derive(Debug)]
pub(crate) struct Acquired<E> {
    pub lease: Lease<E>,
    pub generation: u64,
    /// Environments evicted to make room; the caller stops them.
    pub stop: Vec<Arc<E>>,
}

/// Provisioned environments to start, decided by [`PoolState::provision`].
#[derive(Debug)]
pub(crate) struct ProvisionPlan {
    pub record: Arc<FunctionRecord>,
    pub generation: u64,
    pub count: u32,
}

/// Counts for one function, for tests, metrics and the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnvironmentCounts {
    /// Environments waiting for an invocation.
    pub idle: usize,
    /// Invocations running.
    pub busy: u32,
    /// Environments being started.
    pub starting: usize,
    /// Environments that exist or are being started.
    pub live: usize,
}

struct FnPool<E> {
    current: Option<Arc<FunctionRecord>>,
    generation: u64,
    /// Most recently used last.
    idle: Vec<(Arc<E>, Instant)>,
    busy: u32,
    /// Live environments: id → generation.
    members: HashMap<String, u64>,
    /// Generations of starts in progress.
    starting: Vec<u64>,
}

impl<E> FnPool<E> {
    fn new() -> Self {
        FnPool {
            current: None,
            generation: 0,
            idle: Vec::new(),
            busy: 0,
            members: HashMap::new(),
            starting: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.current.is_none()
            && self.idle.is_empty()
            && self.busy == 0
            && self.members.is_empty()
            && self.starting.is_empty()
    }
}

pub(crate) struct PoolState<E> {
    functions: HashMap<String, FnPool<E>>,
    busy_total: u32,
    live_total: usize,
    max_concurrency: u32,
    next_generation: u64,
    shutting_down: bool,
}

impl<E: Pooled> PoolState<E> {
    pub(crate) fn new(max_concurrency: u32) -> Self {
        PoolState {
            functions: HashMap::new(),
            busy_total: 0,
            live_total: 0,
            max_concurrency,
            next_generation: 1,
            shutting_down: false,
        }
    }

    /// Makes `record` the function's current generation if it is not already; returns the
    /// idle environments of the previous generation.
    fn adopt(&mut self, record: &Arc<FunctionRecord>) -> Vec<Arc<E>> {
        let name = &record.config.name;
        let next = &mut self.next_generation;
        let fp = self
            .functions
            .entry(name.clone())
            .or_insert_with(FnPool::new);
        match &fp.current {
            Some(cur) if same_generation(cur, record) => {
                // Concurrency settings may differ without a new generation.
                fp.current = Some(record.clone());
                Vec::new()
            }
            _ => {
                fp.current = Some(record.clone());
                fp.generation = *next;
                *next += 1;
                let drained: Vec<Arc<E>> = fp.idle.drain(..).map(|(e, _)| e).collect();
                for e in &drained {
                    fp.members.remove(e.id());
                }
                self.live_total -= drained.len();
                drained
            }
        }
    }

    /// Takes a concurrency slot for one invocation of `record`, or says why not.
    pub(crate) fn acquire(
        &mut self,
        record: &Arc<FunctionRecord>,
    ) -> Result<Acquired<E>, InvokeError> {
        if self.shutting_down {
            return Err(InvokeError::ShuttingDown);
        }
        if record.reserved_concurrency == Some(0) {
            return Err(InvokeError::Throttled {
                reason: RESERVED_LIMIT,
            });
        }
        let busy = self
            .functions
            .get(&record.config.name)
            .map_or(0, |f| f.busy);
        if record.reserved_concurrency.is_some_and(|r| busy >= r) {
            return Err(InvokeError::Throttled {
                reason: RESERVED_LIMIT,
            });
        }
        if self.busy_total >= self.max_concurrency {
            return Err(InvokeError::Throttled {
                reason: GLOBAL_LIMIT,
            });
        }
        let mut stop = self.adopt(record);
        let Some(fp) = self.functions.get_mut(&record.config.name) else {
            return Err(InvokeError::Internal("function pool vanished".into()));
        };
        fp.busy += 1;
        self.busy_total += 1;
        let generation = fp.generation;
        while let Some((env, _)) = fp.idle.pop() {
            if env.alive() {
                return Ok(Acquired {
                    lease: Lease::Warm(env),
                    generation,
                    stop,
                });
            }
            fp.members.remove(env.id());
            self.live_total -= 1;
            stop.push(env);
        }
        fp.starting.push(generation);
        self.live_total += 1;
        if self.live_total > self.max_concurrency as usize {
            stop.extend(self.evict_one());
        }
        Ok(Acquired {
            lease: Lease::Cold,
            generation,
            stop,
        })
    }

    /// Stops the least recently used idle, non-provisioned environment of any function.
    fn evict_one(&mut self) -> Option<Arc<E>> {
        let (name, idx) = self
            .functions
            .iter()
            .flat_map(|(name, fp)| {
                fp.idle
                    .iter()
                    .enumerate()
                    .filter(|(_, (e, _))| !e.provisioned())
                    .map(move |(i, (_, t))| (name, i, *t))
            })
            .min_by_key(|(_, _, t)| *t)
            .map(|(name, i, _)| (name.clone(), i))?;
        let fp = self.functions.get_mut(&name)?;
        let (env, _) = fp.idle.remove(idx);
        fp.members.remove(env.id());
        self.live_total -= 1;
        Some(env)
    }

    /// A start reserved by [`PoolState::acquire`] or [`PoolState::provision`] produced `env`.
    pub(crate) fn cold_started(&mut self, name: &str, env: &Arc<E>) {
        if let Some(fp) = self.functions.get_mut(name) {
            if let Some(i) = fp.starting.iter().position(|g| *g == env.generation()) {
                fp.starting.swap_remove(i);
            }
            fp.members.insert(env.id().to_string(), env.generation());
        }
    }

    /// A reserved start failed; `busy` says whether it held an invocation's slot.
    pub(crate) fn start_failed(&mut self, name: &str, generation: u64, busy: bool) {
        self.live_total = self.live_total.saturating_sub(1);
        if busy {
            self.busy_total = self.busy_total.saturating_sub(1);
        }
        if let Some(fp) = self.functions.get_mut(name) {
            if let Some(i) = fp.starting.iter().position(|g| *g == generation) {
                fp.starting.swap_remove(i);
            }
            if busy {
                fp.busy = fp.busy.saturating_sub(1);
            }
        }
        self.forget_if_empty(name);
    }

    /// An invocation ended. The environment goes back to the idle list if it is healthy and of
    /// the current generation; otherwise it is returned for stopping.
    pub(crate) fn release(
        &mut self,
        name: &str,
        env: Arc<E>,
        healthy: bool,
        now: Instant,
    ) -> Option<Arc<E>> {
        self.busy_total = self.busy_total.saturating_sub(1);
        let shutting_down = self.shutting_down;
        let Some(fp) = self.functions.get_mut(name) else {
            self.live_total = self.live_total.saturating_sub(1);
            return Some(env);
        };
        fp.busy = fp.busy.saturating_sub(1);
        let keep = healthy
            && env.alive()
            && !shutting_down
            && fp.current.is_some()
            && env.generation() == fp.generation;
        if keep {
            fp.idle.push((env, now));
            return None;
        }
        fp.members.remove(env.id());
        self.live_total = self.live_total.saturating_sub(1);
        self.forget_if_empty(name);
        Some(env)
    }

    /// A provisioned environment finished initializing.
    pub(crate) fn provisioned_ready(
        &mut self,
        name: &str,
        env: Arc<E>,
        now: Instant,
    ) -> Option<Arc<E>> {
        self.cold_started(name, &env);
        let shutting_down = self.shutting_down;
        let Some(fp) = self.functions.get_mut(name) else {
            self.live_total = self.live_total.saturating_sub(1);
            return Some(env);
        };
        if !shutting_down
            && env.alive()
            && fp.current.is_some()
            && env.generation() == fp.generation
        {
            // Oldest position: on-demand environments are reused first and reaped first.
            fp.idle.insert(0, (env, now));
            return None;
        }
        fp.members.remove(env.id());
        self.live_total = self.live_total.saturating_sub(1);
        self.forget_if_empty(name);
        Some(env)
    }

    /// The function changed (`Some`) or was deleted (`None`): returns idle environments that
    /// are no longer current.
    pub(crate) fn changed(
        &mut self,
        name: &str,
        record: Option<&Arc<FunctionRecord>>,
    ) -> Vec<Arc<E>> {
        match record {
            Some(r) => self.adopt(r),
            None => {
                let Some(fp) = self.functions.get_mut(name) else {
                    return Vec::new();
                };
                fp.current = None;
                let drained: Vec<Arc<E>> = fp.idle.drain(..).map(|(e, _)| e).collect();
                for e in &drained {
                    fp.members.remove(e.id());
                }
                self.live_total -= drained.len();
                self.forget_if_empty(name);
                drained
            }
        }
    }

    /// Reserves starts so that at least `provisioned_concurrency` environments of the current
    /// generation exist.
    pub(crate) fn provision(&mut self, name: &str) -> Option<ProvisionPlan> {
        if self.shutting_down {
            return None;
        }
        let fp = self.functions.get_mut(name)?;
        let record = fp.current.clone()?;
        let target = record.provisioned_concurrency as usize;
        let gen = fp.generation;
        let have = fp.members.values().filter(|g| **g == gen).count()
            + fp.starting.iter().filter(|g| **g == gen).count();
        if have >= target {
            return None;
        }
        let count = target - have;
        fp.starting.extend(std::iter::repeat_n(gen, count));
        self.live_total += count;
        Some(ProvisionPlan {
            record,
            generation: gen,
            count: u32::try_from(count).unwrap_or(u32::MAX),
        })
    }

    /// Idle on-demand environments unused for `idle_timeout`, and idle ones that died.
    pub(crate) fn expire_idle(&mut self, now: Instant, idle_timeout: Duration) -> Vec<Arc<E>> {
        let mut out = Vec::new();
        for fp in self.functions.values_mut() {
            let mut i = 0;
            while i < fp.idle.len() {
                let (env, since) = &fp.idle[i];
                let expired =
                    !env.provisioned() && now.saturating_duration_since(*since) >= idle_timeout;
                if expired || !env.alive() {
                    let (env, _) = fp.idle.remove(i);
                    fp.members.remove(env.id());
                    out.push(env);
                } else {
                    i += 1;
                }
            }
        }
        self.live_total -= out.len();
        self.functions.retain(|_, fp| !fp.is_empty());
        out
    }

    /// Refuses new invocations from now on; returns every idle environment.
    pub(crate) fn begin_shutdown(&mut self) -> Vec<Arc<E>> {
        self.shutting_down = true;
        let mut out = Vec::new();
        for fp in self.functions.values_mut() {
            for (env, _) in fp.idle.drain(..) {
                fp.members.remove(env.id());
                out.push(env);
            }
        }
        self.live_total -= out.len();
        out
    }

    pub(crate) fn busy_total(&self) -> u32 {
        self.busy_total
    }

    pub(crate) fn starting_total(&self) -> usize {
        self.functions.values().map(|f| f.starting.len()).sum()
    }

    pub(crate) fn counts(&self, name: &str) -> EnvironmentCounts {
        self.functions
            .get(name)
            .map_or_else(EnvironmentCounts::default, |fp| EnvironmentCounts {
                idle: fp.idle.len(),
                busy: fp.busy,
                starting: fp.starting.len(),
                live: fp.members.len() + fp.starting.len(),
            })
    }

    fn forget_if_empty(&mut self, name: &str) {
        if self.functions.get(name).is_some_and(FnPool::is_empty) {
            self.functions.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gust_model::FunctionConfig;

    #[derive(Debug)]
    struct Fake {
        id: String,
        generation: u64,
        provisioned: bool,
    }
    impl Pooled for Fake {
        fn id(&self) -> &str {
            &self.id
        }
        fn generation(&self) -> u64 {
            self.generation
        }
        fn provisioned(&self) -> bool {
            self.provisioned
        }
        fn alive(&self) -> bool {
            true
        }
    }

    fn record(name: &str, reserved: Option<u32>, code: &str) -> Arc<FunctionRecord> {
        Arc::new(FunctionRecord {
            revision_id: "r".into(),
            reserved_concurrency: reserved,
            ..FunctionRecord::new(FunctionConfig::new(name, "provided.al2023", ""), code)
        })
    }

    fn start(pool: &mut PoolState<Fake>, name: &str, a: &Acquired<Fake>, id: &str) -> Arc<Fake> {
        assert!(matches!(a.lease, Lease::Cold));
        let env = Arc::new(Fake {
            id: id.into(),
            generation: a.generation,
            provisioned: false,
        });
        pool.cold_started(name, &env);
        env
    }

    #[test]
    fn warm_reuse_and_limits() {
        let mut pool = PoolState::<Fake>::new(2);
        let r = record("f", Some(1), "c1");
        let a = pool.acquire(&r).unwrap();
        let env = start(&mut pool, "f", &a, "e1");
        assert!(matches!(
            pool.acquire(&r),
            Err(InvokeError::Throttled {
                reason: RESERVED_LIMIT
            })
        ));
        assert!(pool.release("f", env, true, Instant::now()).is_none());
        let a = pool.acquire(&r).unwrap();
        assert!(matches!(a.lease, Lease::Warm(ref e) if e.id == "e1"));
        let g = record("g", None, "c");
        let _b = pool.acquire(&g).unwrap();
        assert!(matches!(
            pool.acquire(&g),
            Err(InvokeError::Throttled {
                reason: GLOBAL_LIMIT
            })
        ));
        assert!(matches!(
            pool.acquire(&record("z", Some(0), "c")),
            Err(InvokeError::Throttled {
                reason: RESERVED_LIMIT
            })
        ));
    }

    #[test]
    fn new_generation_drains() {
        let mut pool = PoolState::<Fake>::new(10);
        let r1 = record("f", None, "c1");
        let a = pool.acquire(&r1).unwrap();
        let e1 = start(&mut pool, "f", &a, "e1");
        let b = pool.acquire(&r1).unwrap();
        let e2 = start(&mut pool, "f", &b, "e2");
        assert!(pool.release("f", e1, true, Instant::now()).is_none());
        let r2 = record("f", None, "c2");
        let drained = pool.changed("f", Some(&r2));
        assert_eq!(drained.len(), 1);
        // The busy one of the old generation is stopped when it ends.
        assert!(pool.release("f", e2, true, Instant::now()).is_some());
        assert_eq!(pool.counts("f").live, 0);
        let c = pool.acquire(&r2).unwrap();
        assert!(matches!(c.lease, Lease::Cold));
    }

    #[test]
    fn idle_expiry_and_shutdown() {
        let mut pool = PoolState::<Fake>::new(10);
        let r = record("f", None, "c1");
        let a = pool.acquire(&r).unwrap();
        let e = start(&mut pool, "f", &a, "e1");
        let t0 = Instant::now();
        assert!(pool.release("f", e, true, t0).is_none());
        assert!(pool.expire_idle(t0, Duration::from_secs(1)).is_empty());
        assert_eq!(
            pool.expire_idle(t0 + Duration::from_secs(2), Duration::from_secs(1))
                .len(),
            1
        );
        assert_eq!(pool.counts("f"), EnvironmentCounts::default());
        assert!(pool.begin_shutdown().is_empty());
        assert!(matches!(pool.acquire(&r), Err(InvokeError::ShuttingDown)));
    }

    #[test]
    fn eviction_when_full() {
        let mut pool = PoolState::<Fake>::new(1);
        let f = record("f", None, "c");
        let a = pool.acquire(&f).unwrap();
        let e = start(&mut pool, "f", &a, "e1");
        assert!(pool.release("f", e, true, Instant::now()).is_none());
        let g = record("g", None, "c");
        let b = pool.acquire(&g).unwrap();
        assert_eq!(b.stop.len(), 1);
        assert_eq!(pool.counts("f").live, 0);
    }

    #[test]
    fn provisioning_plans() {
        let mut pool = PoolState::<Fake>::new(10);
        let mut rec = (*record("f", None, "c")).clone();
        rec.provisioned_concurrency = 2;
        let rec = Arc::new(rec);
        assert!(pool.changed("f", Some(&rec)).is_empty());
        let plan = pool.provision("f").unwrap();
        assert_eq!(plan.count, 2);
        assert!(pool.provision("f").is_none());
        let env = Arc::new(Fake {
            id: "p1".into(),
            generation: plan.generation,
            provisioned: true,
        });
        assert!(pool.provisioned_ready("f", env, Instant::now()).is_none());
        pool.start_failed("f", plan.generation, false);
        assert_eq!(
            pool.counts("f"),
            EnvironmentCounts {
                idle: 1,
                busy: 0,
                starting: 0,
                live: 1
            }
        );
        assert_eq!(pool.provision("f").unwrap().count, 1);
    }
}
