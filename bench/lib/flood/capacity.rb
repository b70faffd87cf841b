# frozen_string_literal: true

require_relative "../timing"
require_relative "../fixtures"

module Bench
  class Flood
    # Flood's capacity figures. The applier subscribes to a channel of its
    # own and is then stopped (SIGSTOP) while the flooder floods that channel,
    # so a backlog waits in Redis (its pub/sub output buffer limit is lifted)
    # and in the applier's socket; the applier is continued (SIGCONT) and
    # timed until its stats[:applied] shows every change the flooder
    # published. Each round floods afresh: the bus rejects a message it has
    # seen before, so a recorded backlog cannot be published twice.
    module Capacity
      private

      def capacity
        [@flooder, @applier].each(&:close)
        @flooder.close(store: :elsewhere)
        options = { name: :backlog, redis: @bus.url, channel: @fixtures.channel("flood-backlog") }
        [@flooder, @applier].each { |peer| @fixtures.open_store(peer, **options) }
        rounds = Array.new(@repetitions) { capacity_round }
        capacity_figures(rounds).merge(backlog_rejected: @applier.stats(store: :backlog)[:rejected])
      end

      def capacity_figures(rounds)
        median = ->(name) { Timing.median(rounds.map { |round| round[name] }) }
        { capacity: Timing.median(rounds.map { |round| round[:backlog] / round[:drain_seconds] }),
          backlog: median[:backlog], backlog_messages: median[:backlog_messages],
          drain_seconds: median[:drain_seconds], backlog_rate: median[:backlog_rate],
          backlog_holds: median[:backlog_holds] }
      end

      # One backlog, built while the applier is stopped and applied once it
      # continues.
      def capacity_round
        applied, received = @applier.stats(store: :backlog).values_at(:applied, :received)
        flood, changes, started = flood_while_stopped
        done = Fixtures.wait_until(60, poll: 0.001) { @applier.stats(store: :backlog)[:applied] - applied >= changes }
        raise "the applier did not apply the #{changes} changes of its backlog within 60 s" unless done

        { drain_seconds: Timing.now - started, backlog: changes,
          backlog_messages: @applier.stats(store: :backlog)[:received] - received,
          backlog_rate: flood[:changes] / flood[:seconds], backlog_holds: flood[:holds] }
      end

      # Floods the backlog channel with the applier stopped; returns the
      # flood's figures, the changes published (after the publisher's
      # coalescing) and when the applier was continued.
      def flood_while_stopped
        published = @flooder.stats(store: :backlog)[:published]
        Process.kill(:STOP, @applier.pid)
        begin
          flood = @flooder.flood(seconds: @backlog_seconds, keys: KEYS, value_bytes: VALUE_BYTES, store: :backlog,
                                 within: @backlog_seconds + 60)
          @flooder.flush_sync(30, store: :backlog, within: 40)
          changes = @flooder.stats(store: :backlog)[:published] - published
        ensure
          started = Timing.now
          Process.kill(:CONT, @applier.pid)
        end
        [flood, changes, started]
      end
    end
  end
end
