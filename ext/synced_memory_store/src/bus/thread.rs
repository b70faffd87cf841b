//! What the bus threads do first: keep signals away from them, and ask for
//! prompt scheduling.
//!
//! **Signals.** Signals sent to the process (SIGCHLD, SIGCONT after a stop,
//! SIGWINCH …) are delivered to any thread that does not block them; landing on
//! a bus thread, one interrupts its blocking socket read (EINTR), which looks
//! like a broken connection and costs a resubscription (and L1). Ruby expects
//! to handle them on its own threads anyway, so the bus threads block them all.
//!
//! **Scheduling.** Each bus thread spends almost all its time blocked and then
//! has a few microseconds of work that decides how soon a write reaches other
//! processes. On Linux 6.12+ (EEVDF), a thread may ask for a short time slice:
//! its deadline comes sooner, so when it wakes on a core busy with a Ruby thread
//! in a tight loop it gets the CPU within about that slice rather than after the
//! busy thread's default slice (milliseconds). It asks for no more CPU time,
//! needs no privilege, and older kernels ignore the request.

/// Slice requested for the bus threads.
const SLICE_NANOS: u64 = 100_000;

#[cfg(target_os = "linux")]
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Prepares the calling (bus) thread: blocks signals and asks for a short slice.
pub(crate) fn prepare() {
    block_signals();
    favour_latency();
}

#[cfg(unix)]
fn block_signals() {
    // SAFETY: fills a local sigset and sets the calling thread's mask;
    // SIGKILL and SIGSTOP cannot be blocked and are left as they are.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

#[cfg(not(unix))]
fn block_signals() {}

/// Asks the scheduler for a short slice for the calling thread, keeping its
/// policy (SCHED_OTHER) and nice value. Failure changes nothing and is ignored.
#[cfg(target_os = "linux")]
fn favour_latency() {
    // SAFETY: getpriority only reads this thread's nice value (0 = calling
    // thread). It returns -1 both for nice -1 and on error; either way the value
    // is a valid nice to keep.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: SLICE_NANOS,
        deadline: 0,
        period: 0,
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: sched_setattr(0, attr, 0) changes only the calling thread's
    // scheduling parameters; `attr` is a complete, correctly sized struct that
    // outlives the call.
    unsafe {
        libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32);
    }
}

/// Elsewhere there is nothing to ask for.
#[cfg(not(target_os = "linux"))]
fn favour_latency() {}
