//! A PKCS#11 module for fault tests. It loads the real module (`PKCS11_FAULT_MODULE`, SoftHSM2
//! by default), hands out that module's own function list with a few entries wrapped, and makes
//! the wrapped calls fail or wait as told:
//!
//! - the control file named by `PKCS11_FAULT_CONTROL`, read again whenever its content
//!   changes, holds lines `<function> fail <CKR value, hex or decimal> <count>` (the next
//!   `count` calls return that value without reaching the token) and `<function> latency_us
//!   <µs>` (every call waits that long first); `#` starts a comment;
//! - `PKCS11_FAULT_LATENCY_US` adds that latency to every C_Sign, without a control file (what
//!   a network HSM costs, for `scripts/bench --hsm-latency-ms`).
//!
//! Wrapped: C_OpenSession, C_Login, C_SignInit and C_Sign (its latency only on the call that
//! produces the signature, not on the length query). Failures are injected before the real
//! call, so the token is left in a clean state (no operation half started).

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use cryptoki_sys::{
    CKR_ARGUMENTS_BAD, CKR_GENERAL_ERROR, CK_BYTE, CK_FLAGS, CK_FUNCTION_LIST, CK_MECHANISM,
    CK_NOTIFY, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CK_SLOT_ID, CK_ULONG, CK_USER_TYPE,
    CK_UTF8CHAR,
};

struct Module {
    // Kept loaded for the life of the process: the function pointers point into it.
    _library: libloading::Library,
    real: CK_FUNCTION_LIST,
    ours: CK_FUNCTION_LIST,
}

// SAFETY: the function list holds only function pointers and a version; PKCS#11 modules
// loaded with CKF_OS_LOCKING_OK are called from any thread.
unsafe impl Send for Module {}
unsafe impl Sync for Module {}

#[derive(Default)]
struct Rules {
    /// The control file's content the rules were parsed from.
    seen: Option<String>,
    faults: HashMap<String, (CK_RV, u64)>,
    latency_us: HashMap<String, u64>,
}

impl Rules {
    fn parse(&mut self, text: &str) {
        self.faults.clear();
        self.latency_us.clear();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [function, "fail", rv, count] => {
                    if let (Some(rv), Ok(count)) = (number(rv), count.parse()) {
                        self.faults.insert((*function).to_owned(), (rv, count));
                    }
                }
                [function, "latency_us", us] => {
                    if let Ok(us) = us.parse() {
                        self.latency_us.insert((*function).to_owned(), us);
                    }
                }
                _ => {}
            }
        }
    }
}

fn number(text: &str) -> Option<CK_RV> {
    match text.strip_prefix("0x") {
        Some(hex) => CK_RV::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn rules() -> &'static Mutex<Rules> {
    static RULES: OnceLock<Mutex<Rules>> = OnceLock::new();
    RULES.get_or_init(Default::default)
}

fn fixed_sign_latency() -> u64 {
    static LATENCY: OnceLock<u64> = OnceLock::new();
    *LATENCY.get_or_init(|| {
        std::env::var("PKCS11_FAULT_LATENCY_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// Before a wrapped call: the failure to return instead of calling the token, if one is armed;
/// waits for the configured latency otherwise.
fn intercept(function: &str) -> Option<CK_RV> {
    let mut wait = if function == "C_Sign" {
        fixed_sign_latency()
    } else {
        0
    };
    if let Some(path) = std::env::var_os("PKCS11_FAULT_CONTROL") {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let Ok(mut rules) = rules().lock() else {
            return None;
        };
        if rules.seen.as_deref() != Some(text.as_str()) {
            rules.parse(&text);
            rules.seen = Some(text);
        }
        if let Some((rv, left)) = rules.faults.get_mut(function) {
            if *left > 0 {
                *left -= 1;
                return Some(*rv);
            }
        }
        wait += rules.latency_us.get(function).copied().unwrap_or(0);
    }
    if wait > 0 {
        std::thread::sleep(Duration::from_micros(wait));
    }
    None
}

fn load() -> Option<Module> {
    let path = std::env::var_os("PKCS11_FAULT_MODULE")
        .unwrap_or_else(|| "/usr/lib/softhsm/libsofthsm2.so".into());
    // SAFETY: loading a PKCS#11 module runs its initialisers, as any PKCS#11 consumer does.
    let library = unsafe { libloading::Library::new(path) }.ok()?;
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11 module.
    let rv = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
            library.get(b"C_GetFunctionList\0").ok()?;
        get(&mut list)
    };
    if rv != 0 || list.is_null() {
        return None;
    }
    // SAFETY: the module returned a valid list that lives as long as the library.
    let real = unsafe { *list };
    let mut ours = real;
    ours.C_GetFunctionList = Some(C_GetFunctionList);
    ours.C_OpenSession = Some(open_session);
    ours.C_Login = Some(login);
    ours.C_SignInit = Some(sign_init);
    ours.C_Sign = Some(sign);
    Some(Module {
        _library: library,
        real,
        ours,
    })
}

fn module() -> Option<&'static Module> {
    static MODULE: OnceLock<Option<Module>> = OnceLock::new();
    MODULE.get_or_init(load).as_ref()
}

/// The PKCS#11 entry point: the real module's list, with the wrapped functions.
///
/// # Safety
/// `list` must be a valid pointer to write the list's address to.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    if list.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    match module() {
        Some(m) => {
            *list = std::ptr::addr_of!(m.ours).cast_mut();
            0
        }
        None => CKR_GENERAL_ERROR,
    }
}

unsafe extern "C" fn open_session(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    app: *mut c_void,
    notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    if let Some(rv) = intercept("C_OpenSession") {
        return rv;
    }
    match module().and_then(|m| m.real.C_OpenSession) {
        Some(f) => f(slot, flags, app, notify, session),
        None => CKR_GENERAL_ERROR,
    }
}

unsafe extern "C" fn login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    if let Some(rv) = intercept("C_Login") {
        return rv;
    }
    match module().and_then(|m| m.real.C_Login) {
        Some(f) => f(session, user, pin, pin_len),
        None => CKR_GENERAL_ERROR,
    }
}

unsafe extern "C" fn sign_init(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    if let Some(rv) = intercept("C_SignInit") {
        return rv;
    }
    match module().and_then(|m| m.real.C_SignInit) {
        Some(f) => f(session, mechanism, key),
        None => CKR_GENERAL_ERROR,
    }
}

unsafe extern "C" fn sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    // Only the call that signs pays the latency; a length query (no buffer) does not.
    if !signature.is_null() {
        if let Some(rv) = intercept("C_Sign") {
            return rv;
        }
    }
    match module().and_then(|m| m.real.C_Sign) {
        Some(f) => f(session, data, data_len, signature, signature_len),
        None => CKR_GENERAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_failures_and_latencies() {
        let mut rules = Rules::default();
        rules.parse(
            "# 1\nC_SignInit fail 0x30 2\nC_Sign latency_us 1500\nnonsense\nC_Login fail 257 1",
        );
        assert_eq!(rules.faults["C_SignInit"], (0x30, 2));
        assert_eq!(rules.faults["C_Login"], (257, 1));
        assert_eq!(rules.latency_us["C_Sign"], 1500);
        assert_eq!(rules.faults.len(), 2);
        rules.parse("");
        assert!(rules.faults.is_empty() && rules.latency_us.is_empty());
    }
}
