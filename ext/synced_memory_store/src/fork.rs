//! Counting forks: a child handler registered with `pthread_atfork` runs in the
//! child of every `fork()` made in this process (Ruby's `Process.fork`, and C
//! code calling fork directly), so comparing a count taken earlier with the
//! current one tells cheaply whether the caller is a forked copy. The Ruby side
//! checks it before publishing, where `Process.pid` would cost a system call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn in_child() {
    // Only an atomic increment: a fork child handler must be async-signal-safe.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Registers the child handler (once per process; it survives into children).
pub fn watch() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a plain function with no captured state; it is
        // called in the child right after fork, and only increments an atomic.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
}

/// Forks this process has gone through since it started (0 in the original).
pub fn count() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_sees_the_count_go_up() {
        watch();
        let before = count();
        // SAFETY: the child only reads an atomic and exits without unwinding.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = if count() == before + 1 { 0 } else { 1 };
            // SAFETY: leaves the child at once, running no destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child we just made.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child saw no new fork"
        );
        assert_eq!(count(), before, "the parent's count does not change");
    }
}
