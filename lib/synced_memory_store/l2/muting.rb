# frozen_string_literal: true

module SyncedMemoryStore
  class L2
    # The L2's own instrumentation, muted for work it does on the store's
    # behalf: the store reports each operation once, so the L2's events and
    # debug log lines for it would be duplicates.
    module Muting
      # Set (fiber-locally) while the store calls one of the L2's public
      # methods on its own behalf.
      MUTED = :synced_memory_store_l2_muted

      # Prepended to the L2's singleton class: instrumentation passes straight
      # through to the block while MUTED is set, and is untouched otherwise, so
      # code using the same store object directly still sees its events.
      module Instrumentation
        private

        %i[instrument instrument_multi _instrument].each do |name|
          define_method(name) do |*args, **kwargs, &block|
            Thread.current[MUTED] ? block&.call({}) : super(*args, **kwargs, &block)
          end
        end
      end

      private

      def muted
        previous = Thread.current[MUTED]
        Thread.current[MUTED] = true
        yield
      ensure
        Thread.current[MUTED] = previous
      end
    end
  end
end
