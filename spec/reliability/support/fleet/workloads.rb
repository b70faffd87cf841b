# frozen_string_literal: true

class Fleet
  # The Fleet's workloads: every live process's SoakWorkload started with a
  # seed of its own (another one each time they start, so that no round
  # repeats another) and the soak's settings, and all of them stopped at once,
  # each process's tally kept in #final for the books.
  module Workloads
    # Starts every live process's workload (and its L2 faults).
    def start_workloads
      @runs += 1
      @peers.each { |peer| start_workload(peer) }
    end

    # Stops every workload (and with it the L2 faults) and keeps each live
    # process's tally in #final.
    def stop_workloads
      @peers.each { |peer| peer.call_async(:soak_stop) }
      @final = @peers.to_h { |peer| [peer, peer.await(WITHIN)] }
    end

    # Waits until no process has a refresh ahead under way (one queued
    # before the workloads stopped still writes), then until none has a
    # change queued or awaiting its echo.
    def wait_until_quiet(fixtures)
      [%i[refreshes_in_flight], %i[queued pending]].each do |counters|
        fixtures.eventually(timeout: 20, message: "#{counters.join(" or ")} never 0 in every process") do
          @peers.all? { |peer| peer.stats.values_at(*counters).all?(&:zero?) }
        end
      end
    end

    private

    def start_workload(peer)
      peer.soak_start(keys: @settings.keys, counters: @settings.counters, threads: @settings.threads,
                      seed: seed_of(peer) + (@runs * 10), tag: peer.name, pause: @settings.pause,
                      silent: @settings.silent, weights: @settings.weights,
                      fetch_expires_in: @settings.fetch_expires_in)
    end
  end
end
