//! The PKCS#11 worker pool: a fixed set of named OS threads, each owning one logged-in
//! session, fed by a bounded queue. Async callers get their answer through a oneshot channel
//! and never block an executor thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tokio::sync::oneshot;

use super::error::{classify, HsmError};
use crate::config::{threads_or_cores, HsmConfig};
use crate::metrics::HsmMetrics;

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// Object handles by `CKA_ID` (and object class), shared by the workers: PKCS#11 handles of
/// token objects are valid in every session of the process.
#[derive(Default)]
pub(super) struct HandleCache {
    map: RwLock<HashMap<(u8, Vec<u8>), ObjectHandle>>,
}

impl HandleCache {
    pub(super) fn get(&self, class: u8, id: &[u8]) -> Option<ObjectHandle> {
        self.map
            .read()
            .ok()
            .and_then(|m| m.get(&(class, id.to_vec())).copied())
    }
    pub(super) fn insert(&self, class: u8, id: &[u8], handle: ObjectHandle) {
        if let Ok(mut m) = self.map.write() {
            m.insert((class, id.to_vec()), handle);
        }
    }
    pub(crate) fn remove(&self, id: &[u8]) {
        if let Ok(mut m) = self.map.write() {
            m.retain(|(_, key), _| key != id);
        }
    }
    fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    fn clear(&self) {
        if let Ok(mut m) = self.map.write() {
            m.clear();
        }
    }
}

/// The gateway's handle on the HSM. Cheap to clone; the workers stop when the last clone drops.
#[derive(Clone)]
pub struct Hsm {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Sender<Job>,
    queue: Receiver<Job>,
    workers: usize,
    label_prefix: String,
    metrics: Option<HsmMetrics>,
    handles: Arc<HandleCache>,
    backlog: Arc<Backlog>,
}

/// The signing work queued and not yet started, and how long one signature takes (a moving
/// average over the jobs done): what [`Hsm::backlog`] estimates from.
#[derive(Default)]
pub(super) struct Backlog {
    signatures: AtomicUsize,
    nanos_per_signature: AtomicU64,
}

impl Backlog {
    pub(super) fn queued(&self, n: usize) {
        self.signatures.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` queued signatures leave the queue (a worker takes their job, or it never ran).
    pub(super) fn started(&self, n: usize) {
        let _ = self
            .signatures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
    }

    /// A job signed `n` in `took`: the average moves an eighth of the way to it.
    pub(super) fn signed(&self, n: usize, took: Duration) {
        let Ok(n) = u64::try_from(n) else { return };
        if n == 0 {
            return;
        }
        let each = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX) / n;
        let _ = self
            .nanos_per_signature
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |avg| {
                Some(match avg {
                    0 => each,
                    avg => avg - avg / 8 + each / 8,
                })
            });
    }
}

/// One worker thread's state.
pub(super) struct Worker {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    session: Option<Session>,
    pub(super) handles: Arc<HandleCache>,
}

type Contexts = Mutex<HashMap<PathBuf, Pkcs11>>;

fn contexts() -> &'static Contexts {
    static CONTEXTS: OnceLock<Contexts> = OnceLock::new();
    CONTEXTS.get_or_init(Default::default)
}

/// Every PKCS#11 call of a worker holds this for reading; process exit takes it for writing
/// and then finalizes, so no call (a job, or a worker closing its session as its pool drops)
/// can race the module's teardown. After that, workers call nothing any more.
static EXIT_LOCK: RwLock<()> = RwLock::new(());
static FINALIZED: AtomicBool = AtomicBool::new(false);

/// Runs at process exit: `C_Finalize` every module before its own static destructors run.
/// Without it SoftHSM2 tears itself down under worker threads still closing their sessions.
extern "C" fn finalize_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let _exclusive = EXIT_LOCK.write().unwrap_or_else(|p| p.into_inner());
        FINALIZED.store(true, Ordering::SeqCst);
        if let Ok(mut contexts) = contexts().try_lock() {
            for (_, ctx) in contexts.drain() {
                let _ = ctx.finalize();
            }
        }
    });
}

/// The process-wide PKCS#11 context of `module`, initialised for `threads` threads calling it
/// at once. `C_Initialize` may run only once per process, so every pool (and every test) of the
/// process shares it, and the first call decides how the module locks.
///
/// Up to one thread per core the module gets the gateway's mutexes (`locks`), which wait for a
/// taken mutex by spinning a few µs first: its holder is running, on another core. With more
/// threads than cores the holder is often descheduled, spinning only burns the core it needs,
/// and the module keeps OS mutexes, which sleep at once. Measured with a 2 ms network-HSM
/// stand-in (`scripts/bench --hsm-latency-ms 2`): at 32 workers OS mutexes signed 12.4k/12.7k
/// per second at batch 100 against 11.1k/11.3k with ours; at 8, the same; at 2 workers (one per
/// core) without latency ours signed 30 % more.
pub fn context(module: &Path, threads: usize) -> Result<Pkcs11, HsmError> {
    let module_err = |reason: String| HsmError::Module {
        module: module.display().to_string(),
        reason,
    };
    let mut contexts = contexts()
        .lock()
        .map_err(|_| module_err("context registry poisoned".into()))?;
    if let Some(ctx) = contexts.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| module_err(e.to_string()))?;
    // With our mutexes if the threads fit the cores and the module takes them (`locks`); else
    // with OS locking, as any PKCS#11 consumer does.
    let cores = threads_or_cores(0);
    let initialised = threads <= cores && super::locks::initialize(module);
    if !initialised {
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(module_err(e.to_string())),
        }
    }
    tracing::info!(
        module = %module.display(),
        gateway_mutexes = super::locks::created(),
        "PKCS#11 module initialised (gateway_mutexes: how many of its mutexes are the \
         gateway's; 0: it uses OS locking)"
    );
    if contexts.is_empty() {
        // SAFETY: registers a plain `extern "C"` function with no captured state.
        unsafe {
            libc::atexit(finalize_at_exit);
        }
    }
    contexts.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// The slot holding the token labelled `label`.
fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, HsmError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| classify("C_GetSlotList", e))?;
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| classify("C_GetTokenInfo", e))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(HsmError::TokenNotFound(label.to_owned()))
}

impl Hsm {
    /// Loads the module, finds the token, and starts the workers, each logged in. Fails if the
    /// token or the PIN is wrong, so a misconfigured gateway never starts.
    pub fn start(config: &HsmConfig, metrics: Option<HsmMetrics>) -> Result<Hsm, HsmError> {
        let workers = threads_or_cores(config.workers);
        let ctx = context(&config.module, workers)?;
        let slot = find_slot(&ctx, &config.token_label)?;
        let (jobs, queue) = bounded::<Job>(config.queue_depth);
        let handles = Arc::new(HandleCache::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for n in 0..workers {
            let mut worker = Worker {
                ctx: ctx.clone(),
                slot,
                pin: AuthPin::new(config.pin.expose().into()),
                session: None,
                handles: handles.clone(),
            };
            let queue = queue.clone();
            let ready = ready_tx.clone();
            thread::Builder::new()
                .name(format!("hsm-{n}"))
                .spawn(move || {
                    let opened = worker.session().map(|_| ());
                    let ok = opened.is_ok();
                    let _ = ready.send(opened);
                    if ok {
                        // Ends when every sender (every Hsm clone) is gone.
                        while let Ok(job) = queue.recv() {
                            job(&mut worker);
                        }
                    }
                })
                .map_err(|e| HsmError::Module {
                    module: config.module.display().to_string(),
                    reason: format!("cannot start worker thread: {e}"),
                })?;
        }
        drop(ready_tx);
        for _ in 0..workers {
            ready_rx.recv().map_err(|_| HsmError::Stopped)??;
        }
        Ok(Hsm {
            inner: Arc::new(Inner {
                jobs,
                queue,
                workers,
                label_prefix: config.label_prefix.clone(),
                metrics,
                handles,
                backlog: Arc::default(),
            }),
        })
    }

    /// Number of worker threads (= sessions).
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Key handles cached in this process.
    pub fn cached_handles(&self) -> usize {
        self.inner.handles.len()
    }

    /// Jobs waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.inner.queue.len()
    }

    /// About how long the workers will be busy with the signatures queued now (none started
    /// yet), at the speed of the recent jobs.
    pub fn backlog(&self) -> Duration {
        let b = &self.inner.backlog;
        let queued = u64::try_from(b.signatures.load(Ordering::Acquire)).unwrap_or(u64::MAX);
        let each = b.nanos_per_signature.load(Ordering::Acquire);
        let workers = u64::try_from(self.inner.workers.max(1)).unwrap_or(1);
        Duration::from_nanos(queued.saturating_mul(each) / workers)
    }

    pub(super) fn signing_backlog(&self) -> Arc<Backlog> {
        self.inner.backlog.clone()
    }

    /// The handle cache shared by the workers.
    pub(super) fn handles(&self) -> &HandleCache {
        &self.inner.handles
    }

    /// Prefix of the gateway's own objects (CA keys, PIN HMAC key).
    pub(super) fn label_prefix(&self) -> &str {
        &self.inner.label_prefix
    }

    /// Runs `job` on a worker with its session; retries once after reopening a lost session or
    /// evicting stale handles. Full queue → `QueueFull` immediately. A job whose caller has
    /// stopped waiting by the time a worker takes it is skipped.
    pub(super) async fn run<T, F>(&self, op: &'static str, job: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: FnMut(&Session, &HandleCache) -> Result<T, HsmError> + Send + 'static,
    {
        self.submit(op, job, true).await
    }

    /// [`Hsm::run`] for undo work (destroying the key of a failed enrolment): once queued, the
    /// job runs even if its caller stops waiting.
    pub(super) async fn run_to_end<T, F>(&self, op: &'static str, job: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: FnMut(&Session, &HandleCache) -> Result<T, HsmError> + Send + 'static,
    {
        self.submit(op, job, false).await
    }

    async fn submit<T, F>(
        &self,
        op: &'static str,
        job: F,
        skip_if_abandoned: bool,
    ) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: FnMut(&Session, &HandleCache) -> Result<T, HsmError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let metrics = self.inner.metrics.clone();
        let boxed: Job = Box::new(move |worker: &mut Worker| {
            // The caller is gone (its request was dropped, or failed on another of its jobs):
            // nobody would read the answer, so the worker goes on to the next job.
            if skip_if_abandoned && tx.is_closed() {
                return;
            }
            let started = Instant::now();
            if let Some(m) = &metrics {
                m.busy_workers.inc();
            }
            let result = worker.execute(job);
            if let Some(m) = &metrics {
                m.busy_workers.dec();
                m.job_duration
                    .with_label_values(&[op])
                    .observe(started.elapsed().as_secs_f64());
            }
            let _ = tx.send(result);
        });
        match self.inner.jobs.try_send(boxed) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HsmError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(HsmError::Stopped),
        }
        rx.await.map_err(|_| HsmError::Stopped)?
    }

    /// A trivial round trip through a worker and the token (readiness probe).
    pub async fn ping(&self) -> Result<(), HsmError> {
        self.run("ping", |session, _| {
            session
                .get_session_info()
                .map(|_| ())
                .map_err(|e| classify("C_GetSessionInfo", e))
        })
        .await
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _shared = EXIT_LOCK.read().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = self.session.take() {
            if FINALIZED.load(Ordering::SeqCst) {
                // The module is gone: its sessions went with it.
                std::mem::forget(session);
            }
        }
    }
}

impl Worker {
    /// The worker's session, opened and logged in on first use or after a loss.
    fn session(&mut self) -> Result<&Session, HsmError> {
        if self.session.is_none() {
            let session = self
                .ctx
                .open_rw_session(self.slot)
                .map_err(|e| classify("C_OpenSession", e))?;
            match session.login(UserType::User, Some(&self.pin)) {
                // Login state is per token and process: another worker may have done it.
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(classify("C_Login", e)),
            }
            self.session = Some(session);
        }
        self.session.as_ref().ok_or(HsmError::Stopped)
    }

    fn execute<T>(
        &mut self,
        mut job: impl FnMut(&Session, &HandleCache) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let _shared = EXIT_LOCK.read().unwrap_or_else(|p| p.into_inner());
        if FINALIZED.load(Ordering::SeqCst) {
            return Err(HsmError::Stopped);
        }
        // Each recovery at most once per job. Both may be needed in a row: a token that loses
        // a session may also drop the handles of its objects (SoftHSM2 does when the last
        // session of the token closes), so the retry on a new session meets stale handles.
        let (mut reopened, mut evicted) = (false, false);
        loop {
            let handles = self.handles.clone();
            let result = job(self.session()?, &handles);
            match result {
                Err(HsmError::SessionLost { op }) if !reopened => {
                    tracing::warn!(op, "HSM session lost; reopening and retrying once");
                    self.session = None;
                    reopened = true;
                }
                Err(HsmError::StaleHandle { op }) if !evicted => {
                    tracing::warn!(op, "stale HSM handle; evicting cache and retrying once");
                    handles.clear();
                    evicted = true;
                }
                other => return other,
            }
        }
    }
}
