# frozen_string_literal: true

# How fast a write in one process becomes visible to readers in another, and
# whether a reader that never yields (a tight Ruby loop holding the GVL) still
# sees every update: the bus threads apply messages without the GVL.
#
# Propagation latency = time a reader first saw a value (end of the first read
# that returned it) - time the writer's #write returned (also printed: from
# when it began; the reader can see a value before the writer's thread is back
# from #write, so the first can be negative). Both are CLOCK_MONOTONIC, which
# is one clock for every process of the machine. The
# numbers are printed for the record; the assertions are deliberately generous
# deadlines (this runs on small CI machines), not performance bounds.
RSpec.describe "Sync: propagation to readers in other processes" do
  include SyncHelpers

  let(:updates) { 200 }
  # Every update must be visible to the spinning reader within this (p99 for
  # the sleeping one).
  let(:deadline) { 0.05 }

  let(:bus) { start_redis }
  # No L2: a value can only reach the reader over the bus.
  let(:peers) { spawn_peers(:writer, :reader, **bus_options(bus)) }
  let(:writer) { peers.first }
  let(:reader) { peers.last }
  let(:rng) { Random.new(RSpec.configuration.seed) }

  before { wait_for_connections(writer, reader) }

  # Writes 1..updates, 2-5 ms apart, while the reader loops in +mode+; returns
  # the writes ([value, started, returned]) and the reader's record (runs of
  # equal values: [value, first start, first end, last start, reads]).
  def measure(mode)
    reader.start_reader("counter", mode: mode, interval: 0.001, max_seconds: 60)
    gaps = Array.new(updates) { 0.002 + (rng.rand * 0.003) }
    writes = writer.write_series("counter", (1..updates).to_a, gaps, within: 60)
    eventually(message: "the last update never reached the reader") do
      reader.l1_read("counter") == [:hit, updates]
    end
    [writes, reader.stop_reader]
  end

  # For each write, when the reader first saw its value (nil: never).
  def first_seen(writes, runs)
    seen = {}
    runs.each { |value, _first_start, first_end, _last_start, _reads| seen[value] ||= first_end }
    writes.map { |value, _started, _returned| seen[value] }
  end

  # Updates the reader never observed ("missed": overwritten before it looked),
  # and updates it first observed only after the next write had begun.
  def missed_and_late(writes, seen)
    late = writes.each_cons(2).with_index.count do |(_write, next_write), index|
      seen[index] && seen[index] > next_write[1]
    end
    [seen.each_index.select { |index| seen[index].nil? }, late]
  end

  # A missed update is no staleness when a later one reached the reader within
  # the deadline of the missed write returning: on this small machine the bus
  # thread can be kept off the CPU and then apply two updates back to back,
  # and the reader rightly shows the newer. It is the reader's own doing when
  # the reader paused (garbage collection, the OS running something else) at
  # some point between the write returning and the reader seeing a later
  # value. Any other miss means the reader served a replaced value too long.
  def excused?(index, writes, seen, pauses)
    returned = writes[index][2]
    later = seen[(index + 1)..].compact.first || Float::INFINITY
    later - returned < deadline || pauses.any? { |from, to| from < later && to > returned }
  end

  def report(label, mode, writes, record)
    seen = first_seen(writes, record[:runs])
    latencies = writes.zip(seen).filter_map { |(_value, _started, returned), at| at && (at - returned) }
    from_start = writes.zip(seen).filter_map { |(_value, started, _returned), at| at && (at - started) }
    missed, late = missed_and_late(writes, seen)
    excused = missed.count { |index| excused?(index, writes, seen, record[:pauses]) }
    hidden = " (#{excused} excused: superseded within the deadline, or during a pause of the reader)" if mode == :tight
    puts "\n[sync latency] #{label} reader: #{latency_summary(latencies)} after write returned, " \
         "#{latency_summary(from_start)} after write began; missed #{missed.size}/#{writes.size}" \
         "#{hidden}, seen only after the next write began " \
         "#{late}/#{writes.size}; #{record[:runs].sum(&:last)} reads, longest pause between reads " \
         "#{(record[:max_gap] * 1000).round(3)} ms, #{record[:gc_runs]} GC runs (#{record[:gc_ms]} ms) in the reader"
    [latencies, missed.size - excused]
  end

  def observed_values(record)
    record[:runs].map(&:first).compact
  end

  it "lets a reader spinning in a tight Ruby loop see updates in order, never a replaced one past the deadline" do
    writes, record = measure(:tight)
    latencies, missed = report("spinning", :tight, writes, record)

    expect(record[:runs].sum(&:last)).to be > updates * 100, "the reader was not spinning"
    expect(missed).to eq(0), "the spinning reader held #{missed} replaced values past the deadline while reading"
    observed = observed_values(record)
    expect(observed).to eq(observed.sort), "the reader saw values go backwards: #{observed.inspect}"
    expect(quantile(latencies, 0.99)).to be < deadline
    slow = latencies.count { |latency| latency >= deadline }
    expect(slow).to eq(0), "#{slow} updates took #{deadline * 1000} ms or more (#{latencies.max * 1000} ms at worst)"
  end

  it "lets a reader that sleeps between reads see updates in order, within the deadline" do
    writes, record = measure(:sleepy)
    latencies, = report("sleeping (1 ms between reads)", :sleepy, writes, record)

    observed = observed_values(record)
    expect(observed).to eq(observed.sort), "the reader saw values go backwards: #{observed.inspect}"
    expect(observed.last).to eq(updates)
    expect(quantile(latencies, 0.99)).to be < deadline
  end
end
