# frozen_string_literal: true

class PeerProcess
  # This process's part in the fault-injection soak (spec/reliability): a
  # SoakWorkload on a store with a FaultyRedisCacheStore L2, run in rounds
  # (soak_start, soak_stop) and counted (soak_tally), the store closed and
  # reopened under it (soak_reopen), and what L1 and a read show for the
  # convergence check (soak_observe).
  module Soak
    private

    # Starts the SoakWorkload (created on the first call, with +options+; see
    # there) on this store with +threads+ threads from +seed+, and turns the
    # L2's faults on; returns once its threads run. The threads look the store
    # up by name before each operation, so they go on with the store
    # #command_soak_reopen opens.
    def command_soak_start(threads:, seed:, **options)
      name = @store_name
      @workload ||= SoakWorkload.new(store: -> { @stores.fetch(name) }, **options)
      faulty_l2&.faults_on = true
      @workload.start(threads: threads, seed: seed)
      true
    end

    # What the workload and the L2 faults did so far, since the process
    # started, and the store's stats: { operations:, errors:, unexpected:
    # (errors neither injected nor from a closed store), faults:, stats: }.
    def command_soak_tally
      raise ArgumentError, "no soak workload was started" unless @workload

      { operations: @workload.operations.to_h, errors: @workload.errors.to_h, unexpected: @workload.unexpected,
        faults: @fault_tally.to_h, stats: store.stats }
    end

    # Stops the workload, then the L2's faults; returns #command_soak_tally.
    def command_soak_stop
      raise ArgumentError, "no soak workload was started" unless @workload

      @workload.stop
      faulty_l2&.faults_on = false
      command_soak_tally
    end

    # Closes this store, as an application shutting one down would (workload
    # threads still calling it get ClosedError), and opens a fresh one with
    # the same options under the same name. Returns the closed store's stats.
    def command_soak_reopen(timeout: 5)
      closing = store
      stats = closing.stats
      closing.close(timeout)
      command_open_store(@store_name, @store_options.fetch(@store_name))
      stats
    end

    # { key => [what L1 holds (as #command_l1_read), what #read returns] } for
    # each of +keys+, reading the ones in +raw_keys+ with raw: true.
    def command_soak_observe(keys, raw_keys)
      keys.to_h { |key| [key, [command_l1_read(key), store.read(key, raw: raw_keys.include?(key))]] }
    end

    # This store's L2 if it is a FaultyRedisCacheStore.
    def faulty_l2
      l2 = store.instance_variable_get(:@l2)&.store
      l2 if l2.is_a?(FaultyRedisCacheStore)
    end
  end
end
