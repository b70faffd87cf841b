# frozen_string_literal: true

# Fork safety for every store of the process (see SyncedMemoryStore::ForkHook).
module SyncedMemoryStore
  # Every open store, weakly held, so a forked child can give each a node of its
  # own: native threads do not survive fork, and a child must not publish under
  # its parent's node id or trust an L1 nobody keeps in sync any more.
  @stores = ObjectSpace::WeakMap.new

  class << self
    # Registers +store+ for #after_fork (called by Store#initialize). The
    # store is its own value: Ruby 3.1's WeakMap#each_key checks only the
    # value's liveness (3.3 checks both), so with a value that is always live
    # it yields keys the GC found dead and has not swept yet — at exit,
    # #settle_all would use a store whose instance variables are being freed.
    def track(store)
      @stores[store] = store
    end

    # Gives every store a fresh node in a forked child (see Store#after_fork).
    def after_fork
      @stores.each_key(&:after_fork)
    end

    # Settles every open store (Store#settle), taking at most +timeout+
    # seconds in all: a process that exits right after a write must neither
    # leave other processes holding the value it replaced nor skip the
    # invalidation a concurrent writer's change needs.
    def settle_all(timeout)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @stores.each_key do |store|
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        # A store inherited through a fork that bypassed Process._fork has no
        # bus threads here; its changes belong to the parent.
        next if store.closed? || store.inherited?

        # No refresh ahead may write after the settle (see Store#stop_refreshes).
        store.stop_refreshes(left)
        store.settle([deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max)
      rescue Error
        nil
      end
    end
  end

  at_exit { SyncedMemoryStore.settle_all(1) }

  # Prepended to Process's singleton class: Ruby 3.1+ routes every fork
  # (Process.fork, Kernel#fork, Puma and Unicorn workers) through Process._fork.
  # Forks that bypass it are caught by the stores' fork-count check before they
  # publish (Store#inherited?).
  module ForkHook
    def _fork
      pid = super
      SyncedMemoryStore.after_fork if pid.zero?
      pid
    end
  end

  Process.singleton_class.prepend(ForkHook) if Process.respond_to?(:_fork)
end
