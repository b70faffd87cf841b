# frozen_string_literal: true

require_relative "timing"

module Bench
  # Single-process figures: the cost of one call of each store method, for every
  # store, measured interleaved in one run.
  class Micro
    STRING = ("x" * 100).freeze
    HASH = {
      "name" => "Ada Lovelace", "email" => "ada@example.com", "id" => 1815, "visits" => 42,
      "roles" => %w[admin editor], "updated_at" => Time.at(1_700_000_000)
    }.freeze
    MULTI_KEYS = Array.new(20) { |i| "multi-#{i}" }.freeze
    TAGS = %w[user:1 org:7].freeze

    Figure = Struct.new(:name, :description, :microseconds, keyword_init: true)

    def initialize(stores, scale:)
      @stores = stores
      @scale = scale
    end

    # Runs every figure; returns Figures with { store label => µs per call }.
    def run
      [
        hit("read hit (100-byte String)", "s") { |store| store.read("s") },
        hit("read hit (small Hash)", "h") { |store| store.read("h") },
        hit("read hit (small Hash, 2 tags)", "t") { |store| store.read("t") },
        hit("fetch hit (small Hash)", "h") { |store| store.fetch("h") { raise "miss" } },
        read_miss,
        write,
        multi("read_multi (20 keys)") { |store| store.read_multi(*MULTI_KEYS) },
        multi("fetch_multi (20 keys)") { |store| store.fetch_multi(*MULTI_KEYS) { raise "miss" } }
      ]
    end

    # How many times each figure is measured (its median is reported).
    def repetitions
      @scale < 0.1 ? 3 : 7
    end

    private

    def iterations(base)
      [(base * @scale).to_i, 10].max
    end

    def measure(name, description, cases)
      seconds = Timing.interleaved(cases, seconds: 0.2 * @scale, repetitions: repetitions)
      Figure.new(name: name, description: description, microseconds: seconds.transform_values { |s| s * 1e6 })
    end

    def hit(name, key, &call)
      @stores.each_value do |store|
        store.write("s", STRING)
        store.write("h", HASH)
        # Tagged where the store has tags (the others store it plainly).
        store.write("t", HASH, **(store.respond_to?(:invalidate_tags) ? { tags: TAGS } : {}))
      end
      cases = @stores.transform_values { |store| -> { call.call(store) } }
      measure(name, "the key is cached (for SyncedMemoryStore: in L1)", cases).tap do
        verify { |store| raise "#{name}: wrong value" unless call.call(store) == (key == "s" ? STRING : HASH) }
      end
    end

    def verify(&)
      @stores.each_value(&)
    end

    # An L1 miss that L2 answers: each call reads a key written only to L2
    # (for the stores without levels, the key is simply there), so every call
    # of SyncedMemoryStore pays the miss, the L2 read and the fill.
    def read_miss
      count = iterations(1000)
      samples = Hash.new { |hash, label| hash[label] = [] }
      repetitions.times do |repetition|
        @stores.each do |label, store|
          keys = Array.new(count) { |i| "miss-#{repetition}-#{i}" }
          keys.each { |key| l2_of(store).write(key, HASH) }
          GC.start
          started = Timing.now
          keys.each { |key| store.read(key) }
          samples[label] << ((Timing.now - started) / count)
        end
      end
      Figure.new(name: "read miss falling to L2 (small Hash)",
                 description: "SyncedMemoryStore misses L1 and reads, then fills from, L2; the others read a hit",
                 microseconds: samples.transform_values { |values| Timing.median(values) * 1e6 })
    end

    def l2_of(store)
      store.is_a?(SyncedMemoryStore::Store) ? store.instance_variable_get(:@l2).store : store
    end

    def write
      counter = 0
      cases = @stores.transform_values do |store|
        lambda {
          counter += 1
          store.write("w#{counter % 100}", HASH)
        }
      end
      measure("write (small Hash)", "100 keys written round-robin; SyncedMemoryStore also publishes each",
              cases)
    end

    def multi(name, &call)
      @stores.each_value { |store| MULTI_KEYS.each { |key| store.write(key, HASH) } }
      cases = @stores.transform_values { |store| -> { call.call(store) } }
      measure(name, "every key cached", cases)
    end
  end
end
