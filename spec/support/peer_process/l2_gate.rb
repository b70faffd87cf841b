# frozen_string_literal: true

class PeerProcess
  # The commands that hold a read or a write of one key at a
  # GatedRedisCacheStore L2 (gate_reads, gate_writes), let the test see it
  # held (await_gated) and let it go (release_gate): a race between two
  # processes, made to happen every time.
  module L2Gate
    private

    def command_gate_reads(key)
      gated_l2.gate(key)
      true
    end

    def command_gate_writes(key)
      gated_l2.gate(key, writes: true)
      true
    end

    # [whether a call is held at the gate, the value it read or wrote].
    def command_await_gated(timeout)
      gated_l2.await_held(timeout)
    end

    def command_release_gate
      gated_l2.release
      true
    end

    def gated_l2
      l2 = store.instance_variable_get(:@l2)&.store
      raise ArgumentError, "this store's L2 is not a GatedRedisCacheStore" unless l2.is_a?(GatedRedisCacheStore)

      l2
    end
  end
end
