# frozen_string_literal: true

require_relative "../timing"
require_relative "../fixtures"
require_relative "../bus_recording"

module Bench
  class Flood
    # Flood's capacity figures: the flooder floods a channel that only a
    # BusRecording listens to, then the recording is replayed to the applier,
    # faster than it applies, REPETITIONS times, each timed from the start of
    # the replay until the applier's stats[:applied] shows every change.
    module Capacity
      private

      def capacity
        [@flooder, @applier].each(&:close)
        @flooder.close(store: :elsewhere)
        channel = @fixtures.channel("flood-backlog")
        options = { name: :backlog, redis: @bus.url, channel: channel }
        @fixtures.open_store(@flooder, **options)
        flood = nil
        recording = BusRecording.record(@bus.url, channel) do
          flood = @flooder.flood(seconds: @backlog_seconds, keys: KEYS, value_bytes: VALUE_BYTES, store: :backlog,
                                 within: @backlog_seconds + 60)
          @flooder.flush_sync(30, store: :backlog, within: 40)
        end
        raise "the flooder dropped changes" unless @flooder.stats(store: :backlog)[:dropped].zero?

        @flooder.close(store: :backlog)
        @fixtures.open_store(@applier, **options)
        replay(recording, channel, flood[:changes]).merge(backlog_rate: flood[:changes] / flood[:seconds],
                                                          backlog_holds: flood[:holds])
      end

      # Replays +recording+ to the applier REPETITIONS times; the figures of the
      # capacity measurement (medians).
      def replay(recording, channel, changes)
        rounds = Array.new(@repetitions) { replay_round(recording, channel, changes) }
        { capacity: Timing.median(rounds.map { |seconds, _| changes / seconds }), backlog: changes,
          backlog_messages: recording.messages.size, drain_seconds: Timing.median(rounds.map(&:first)),
          replay_seconds: Timing.median(rounds.map(&:last)),
          backlog_rejected: @applier.stats(store: :backlog)[:rejected] }
      end

      # [seconds until the applier applied every change, seconds the replay took].
      def replay_round(recording, channel, changes)
        applied = @applier.stats(store: :backlog)[:applied]
        started = Timing.now
        replay_seconds = recording.replay(@bus.url, channel)
        done = Fixtures.wait_until(60, poll: 0.001) { @applier.stats(store: :backlog)[:applied] - applied >= changes }
        raise "the applier did not apply the #{changes} replayed changes within 60 s" unless done

        [Timing.now - started, replay_seconds]
      end
    end
  end
end
