# frozen_string_literal: true

class PeerProcess
  # Load for bench/ and the memory specs: many writes in one request
  # (write_many), and writes as fast as one thread can for a while, held back
  # so that the publish queue never overflows (flood).
  module BulkWork
    private

    # Writes +count+ String values, the i-th (i counting from +offset+) under
    # "<prefix><i>", or "<prefix><i % keys>" with +keys+ (a fixed key space),
    # sized sizes[i % sizes.size] bytes. Returns the seconds it took.
    def command_write_many(prefix:, count:, sizes:, keys: nil, offset: 0)
      values = sizes.uniq.to_h { |size| [size, "v" * size] }
      started = monotonic
      (offset...(offset + count)).each do |i|
        store.write("#{prefix}#{keys ? i % keys : i}", values.fetch(sizes[i % sizes.size]))
      end
      monotonic - started
    end

    # Writes as fast as this thread can for +seconds+, cycling over +keys+ keys
    # ("<prefix><i>") with +value_bytes+-byte values that alternate between two
    # contents on each pass: one write per key, or write_multi batches of +batch+
    # keys. Every 100 changes it holds back (sleeping 100 µs) while more than
    # +max_queued+ changes wait for the publisher, so the queue never overflows
    # into a "drop everything". With +rate+ (changes per second) it also
    # sleeps whenever it is ahead of that pace. Returns { changes:, seconds:, holds: }.
    def command_flood(seconds:, batch: 1, keys: 10_000, value_bytes: 32, max_queued: 20_000, prefix: "flood-",
                      rate: nil)
      names = Array.new(keys) { |i| "#{prefix}#{i}" }
      work = %w[a b].flat_map do |fill|
        value = fill * value_bytes
        batch == 1 ? names.map { |name| [name, value] } : names.each_slice(batch).map { |s| s.to_h { |n| [n, value] } }
      end
      flood(work, seconds, max_queued, rate)
    end

    def flood(work, seconds, max_queued, rate)
      changes = holds = 0
      started = monotonic
      deadline = started + seconds
      work.each_slice(work.first.is_a?(Hash) ? 1 : 100).cycle do |items|
        break if monotonic >= deadline

        (holds += 1) && sleep(0.0001) while store.stats[:queued] > max_queued
        keep_pace(started, changes, rate) if rate
        items.each { |item| item.is_a?(Hash) ? store.write_multi(item) : store.write(*item) }
        changes += items.sum { |item| item.is_a?(Hash) ? item.size : 1 }
      end
      { changes: changes, seconds: monotonic - started, holds: holds }
    end

    # Sleeps until +changes+ made since +started+ are no more than +rate+ per second.
    def keep_pace(started, changes, rate)
      ahead = started + (changes.to_f / rate) - monotonic
      sleep(ahead) if ahead.positive?
    end
  end
end
