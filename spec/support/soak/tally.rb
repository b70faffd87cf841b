# frozen_string_literal: true

# Counts by name, safe to bump from several threads: the soak's operations,
# errors and injected faults (spec/support/soak, spec/reliability). A library:
# requiring it defines the class and nothing else.
class Tally
  def initialize(counts = {})
    @lock = Mutex.new
    @counts = Hash.new(0).merge(counts)
  end

  # Adds +amount+ to the count under +name+.
  def add(name, amount = 1)
    @lock.synchronize { @counts[name] += amount }
    self
  end

  # Adds every count of +other+ (a Tally or a Hash of counts).
  def merge!(other)
    other.to_h.each { |name, amount| add(name, amount) }
    self
  end

  def [](name)
    @lock.synchronize { @counts[name] }
  end

  def total
    @lock.synchronize { @counts.values.sum }
  end

  # A plain Hash copy, sorted by name (it crosses the peer wire as is).
  def to_h
    @lock.synchronize { @counts.sort_by { |name, _| name.to_s }.to_h }
  end

  # "name=count name=count …", or "none".
  def to_s
    counts = to_h
    counts.empty? ? "none" : counts.map { |name, amount| "#{name}=#{amount}" }.join(" ")
  end
end
