# frozen_string_literal: true

class PeerProcess
  # The commands of a stampede (stampede_start, stampede_result): threads of
  # this process that fetch one key at an agreed moment, with a block that
  # takes a while (and counts its runs), as peers do in other processes.
  module Stampedes
    private

    # Opens an ActiveSupport store (not a SyncedMemoryStore) under +name+, as
    # lookup_store(+type+, +options+) makes it: a peer to compare with.
    def command_open_plain_store(name, type, options)
      @stores[name] = ActiveSupport::Cache.lookup_store(type, options)
      true
    end

    # Starts +threads+ threads that each, at +at+ (CLOCK_MONOTONIC seconds,
    # which every process of the machine shares; now when nil), fetch +key+
    # with +options+ and a block that counts its run, sleeps +seconds+, then
    # returns "<value>" (or raises RuntimeError +raises+).
    def command_stampede_start(key, threads:, seconds:, value:, at: nil, raises: nil, options: {})
      raise ArgumentError, "a stampede is under way" if @stampede&.any?(&:alive?)

      cache = store
      @stampede_runs = Queue.new
      @stampede = Array.new(threads) do
        Thread.new do
          delay = at && (at - monotonic)
          sleep(delay) if delay&.positive?
          started = monotonic
          fetched = cache.fetch(key, options) do
            @stampede_runs << monotonic
            sleep(seconds)
            raise raises if raises

            value
          end
          [:ok, fetched, monotonic - started]
        rescue StandardError => e
          [:error, e.message, monotonic - started]
        end
      end
      true
    end

    # { runs: how many times the block ran here, results: [[:ok, value,
    # seconds] or [:error, message, seconds] per thread] }, once every thread
    # is done (or raises after +timeout+).
    def command_stampede_result(timeout)
      deadline = monotonic + timeout
      results = @stampede.map do |thread|
        thread.join([deadline - monotonic, 0].max) or raise "a stampede thread did not finish within #{timeout} s"
        thread.value
      end
      { runs: @stampede_runs.size, results: results }
    end
  end
end
