//! The module's locks on the gateway's terms. `C_Initialize` may be given the application's
//! mutex functions (PKCS#11 `CK_C_INITIALIZE_ARGS`: CreateMutex, DestroyMutex, LockMutex,
//! UnlockMutex); a module that takes them guards its shared state (sessions, handles, object
//! store, secure memory) with ours instead of plain OS mutexes.
//!
//! Why: SoftHSM2 takes several process-wide mutexes per signature, each held only briefly.
//! With plain pthread mutexes two threads that meet on one go to sleep in
//! the kernel and are woken by the other (a futex wait and wake, an inter-processor interrupt
//! and, on a VM, an exit to the hypervisor), which costs far more than the work it guards: two
//! threads signing P-256 in one process did no more than one (20.7k against 20.6k signatures
//! per second), while two processes did 38.5k. Our mutex (`parking_lot`'s, tried a few µs
//! first) spins before it sleeps, so most collisions cost no sleep: the same two threads sign
//! 31–33k per second. Only while the module's threads fit the cores (`pool::context` decides):
//! spinning for a holder that is descheduled only burns the core it needs.
//! cryptoki's `CInitializeArgs` cannot carry mutex functions, so this calls the
//! module's `C_Initialize` itself, before cryptoki's (which then finds the module initialised).

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use cryptoki_sys::{
    CKF_OS_LOCKING_OK, CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_MUTEX_BAD,
    CKR_MUTEX_NOT_LOCKED, CKR_OK, CK_C_INITIALIZE_ARGS, CK_FUNCTION_LIST, CK_RV,
};
use parking_lot::lock_api::RawMutex as _;
use parking_lot::RawMutex;

/// Initialises `module` with the gateway's mutex functions; true if the module took them (or
/// this process had initialised it already). False if it refused them (any answer but
/// `CKR_OK`) or cannot be asked (no library, no function list): the caller then initialises it
/// with OS locking, which reports what is wrong with the module.
pub(super) fn initialize(module: &Path) -> bool {
    // SAFETY: loading a PKCS#11 module runs its initialisers, as any PKCS#11 consumer does;
    // cryptoki loads the same file, which the dynamic loader maps once per process.
    let Ok(library) = (unsafe { libloading::Library::new(module) }) else {
        return false;
    };
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11 module.
    let listed = unsafe {
        library
            .get::<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV>(
                b"C_GetFunctionList\0",
            )
            .is_ok_and(|get| get(&mut list) == CKR_OK)
    };
    let c_initialize = if listed && !list.is_null() {
        // SAFETY: the module returned a valid list, which lives as long as the library is loaded.
        unsafe { (*list).C_Initialize }
    } else {
        None
    };
    let Some(c_initialize) = c_initialize else {
        return false;
    };
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create_mutex),
        DestroyMutex: Some(destroy_mutex),
        LockMutex: Some(lock_mutex),
        UnlockMutex: Some(unlock_mutex),
        flags: CKF_OS_LOCKING_OK,
        pReserved: std::ptr::null_mut(),
    };
    // SAFETY: `args` is a valid CK_C_INITIALIZE_ARGS for the duration of the call; the
    // functions it names are valid for the whole process.
    let rv = unsafe { c_initialize(std::ptr::addr_of_mut!(args).cast()) };
    // The module stays loaded for the life of the process: mutexes it created with our
    // functions live in it, and cryptoki's context (kept in the process-wide registry) uses it.
    std::mem::forget(library);
    rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED
}

static CREATED: AtomicUsize = AtomicUsize::new(0);

/// How many mutexes the PKCS#11 modules of this process made with the gateway's functions
/// (0: they guard their state with OS mutexes).
pub fn created() -> usize {
    CREATED.load(Ordering::Relaxed)
}

/// `CreateMutex`: a new unlocked mutex, boxed; its address is the module's handle on it.
unsafe extern "C" fn create_mutex(out: *mut *mut c_void) -> CK_RV {
    if out.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // SAFETY: `out` is non-null and the module passes a place for the handle.
    unsafe { *out = Box::into_raw(Box::new(RawMutex::INIT)).cast() };
    CREATED.fetch_add(1, Ordering::Relaxed);
    CKR_OK
}

/// `DestroyMutex`: frees a mutex made by [`create_mutex`].
unsafe extern "C" fn destroy_mutex(mutex: *mut c_void) -> CK_RV {
    if mutex.is_null() {
        return CKR_MUTEX_BAD;
    }
    // SAFETY: the module only destroys handles `create_mutex` gave it, once each.
    drop(unsafe { Box::from_raw(mutex.cast::<RawMutex>()) });
    CKR_OK
}

/// How often [`lock_mutex`] tries a taken mutex (a CPU pause between tries, a few µs in all)
/// before it waits in `parking_lot` (which spins a little more, then sleeps). SoftHSM2 holds
/// its mutexes for about that long: with these tries the gateway signed P-256 at batch 100
/// ~6 % faster than with `parking_lot` alone (30.5k against 28.7k per second, means of
/// alternating runs; 2,000 tries did no better, and waste more where the holder was
/// descheduled).
const TRIES_BEFORE_SLEEP: usize = 200;

/// `LockMutex`: spins briefly, then sleeps until the mutex is free.
unsafe extern "C" fn lock_mutex(mutex: *mut c_void) -> CK_RV {
    // SAFETY: a non-null handle is one `create_mutex` gave and `destroy_mutex` has not freed.
    match unsafe { mutex.cast::<RawMutex>().as_ref() } {
        Some(m) => {
            for _ in 0..TRIES_BEFORE_SLEEP {
                if m.try_lock() {
                    return CKR_OK;
                }
                std::hint::spin_loop();
            }
            m.lock();
            CKR_OK
        }
        None => CKR_MUTEX_BAD,
    }
}

/// `UnlockMutex`: `CKR_MUTEX_NOT_LOCKED` for a mutex nobody holds (PKCS#11's answer).
unsafe extern "C" fn unlock_mutex(mutex: *mut c_void) -> CK_RV {
    // SAFETY: as in `lock_mutex`.
    match unsafe { mutex.cast::<RawMutex>().as_ref() } {
        Some(m) if m.is_locked() => {
            // SAFETY: the mutex is locked, by the module (PKCS#11 mutexes are not reentrant
            // and belong to no thread).
            unsafe { m.unlock() };
            CKR_OK
        }
        Some(_) => CKR_MUTEX_NOT_LOCKED,
        None => CKR_MUTEX_BAD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mutex_functions_lock_unlock_and_refuse_misuse() {
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: the functions are called as a module would, on a handle they made.
        unsafe {
            assert_eq!(create_mutex(&mut handle), CKR_OK);
            assert!(!handle.is_null());
            assert_eq!(unlock_mutex(handle), CKR_MUTEX_NOT_LOCKED);
            assert_eq!(lock_mutex(handle), CKR_OK);
            let m = &*handle.cast::<RawMutex>();
            assert!(m.is_locked() && !m.try_lock());
            assert_eq!(unlock_mutex(handle), CKR_OK);
            assert!(m.try_lock());
            assert_eq!(unlock_mutex(handle), CKR_OK);
            assert_eq!(destroy_mutex(handle), CKR_OK);
            assert_eq!(create_mutex(std::ptr::null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(lock_mutex(std::ptr::null_mut()), CKR_MUTEX_BAD);
            assert_eq!(unlock_mutex(std::ptr::null_mut()), CKR_MUTEX_BAD);
            assert_eq!(destroy_mutex(std::ptr::null_mut()), CKR_MUTEX_BAD);
        }
    }

    #[test]
    fn a_mutex_excludes_other_threads() {
        struct Handle(*mut c_void);
        // SAFETY: the handle is only used through the mutex functions, which are thread-safe.
        unsafe impl Send for Handle {}
        unsafe impl Sync for Handle {}
        let mut raw: *mut c_void = std::ptr::null_mut();
        // SAFETY: as above.
        assert_eq!(unsafe { create_mutex(&mut raw) }, CKR_OK);
        let handle = std::sync::Arc::new(Handle(raw));
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (handle, inside) = (handle.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        // SAFETY: the handle is live until every thread is joined.
                        assert_eq!(unsafe { lock_mutex(handle.0) }, CKR_OK);
                        let n = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(n, 0, "two threads inside the mutex");
                        inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        // SAFETY: as above.
                        assert_eq!(unsafe { unlock_mutex(handle.0) }, CKR_OK);
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        // SAFETY: every thread is done with it.
        assert_eq!(unsafe { destroy_mutex(handle.0) }, CKR_OK);
    }
}
