# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# The soak's verdict (spec/reliability): for every key, what every live
# process reads through its store (and what its L1 alone holds) against what
# the shared L2 holds. L2 is read by this process, directly, with a plain
# RedisCacheStore on the same server and namespace: no L1, no faults, no
# peer in between. Counter keys are read with <tt>raw: true</tt> on both
# sides (a RedisCacheStore keeps them as bare numbers).
#
# A tagged entry is compared by L2's view of it: what a read against L2
# alone returns, the value inside when every tag version it recorded is the
# tag's version in L2, else nil (SyncedMemoryStore::Store::Tags). A process's
# read must equal that view, and what its L1 holds must be the entry as L2
# stores it (the tags' version keys are compared as keys too).
class Convergence
  # One process reading something other than L2 for one key.
  Divergence = Struct.new(:key, :peer, :l1, :read, :l2) do
    def to_s
      held = l1.first == :hit ? "holds #{Convergence.show(l1.last)} in L1" : "holds nothing in L1"
      "#{key}: #{peer} #{held} and reads #{Convergence.show(read)}; L2 holds #{Convergence.show(l2)}"
    end
  end

  # A comparison (+label+ says when it was made): the divergences, how many
  # (process, key) pairs it compared, and how many of those L1 answered (the
  # pairs where a stale value could have shown).
  Check = Struct.new(:label, :divergences, :compared, :l1_hits, :tagged, :tagged_current) do
    def keys
      divergences.map(&:key).uniq
    end

    def to_s
      "reads compared: #{compared} (#{l1_hits} answered by L1), keys tagged in L2: #{tagged} " \
        "(#{tagged_current} current), divergent keys: #{keys.size}"
    end
  end

  # +value+ for a report line: short, whatever its size.
  def self.show(value)
    long = value.is_a?(String) && value.bytesize > 80
    long ? "a String of #{value.bytesize} bytes starting #{value[0, 24].inspect}" : value.inspect
  end

  def initialize(l2_url:, namespace:, keys:, counters:, tag_keys: [])
    @l2 = ActiveSupport::Cache::RedisCacheStore.new(url: l2_url, namespace: namespace)
    @keys = keys + counters + tag_keys
    @counters = counters
  end

  # Compares every live process's reads with L2. L2 is read before and
  # after the processes: if it changed meanwhile, something still writes,
  # and the comparison would mean nothing.
  def check(peers, label:)
    before = l2_values
    observed = observe(peers)
    after = l2_values
    raise "L2 changed while the reads were compared: something still writes" unless before == after

    views = after.transform_values { |stored| view(stored, after) }
    divergences = observed.flat_map { |peer, reads| divergences_of(peer, reads, after, views) }
    hits = observed.values.sum { |reads| reads.count { |_, (l1, _)| l1.first == :hit } }
    tagged = after.select { |_, stored| SyncedMemoryStore::Tagged.tagged?(stored) }
    Check.new(label, divergences, observed.values.sum(&:size), hits, tagged.size,
              tagged.count { |key, _| !views[key].nil? })
  end

  private

  def l2_values
    @keys.to_h { |key| [key, @l2.read(key, raw: @counters.include?(key))] }
  end

  def observe(peers)
    peers.each { |peer| peer.call_async(:soak_observe, @keys, @counters) }
    peers.to_h { |peer| [peer, peer.await(30)] }
  end

  # What a read of L2 alone returns for what L2 stores under a key: a
  # tagged entry's value while every version it recorded is its tag's
  # version in L2 (+l2_values+ holds the soak's tag keys), else nil.
  def view(stored, l2_values)
    return stored unless SyncedMemoryStore::Tagged.tagged?(stored)

    current = SyncedMemoryStore::Tagged.versions(stored).all? do |tag_key, version|
      version == (l2_values.key?(tag_key) ? l2_values[tag_key] : @l2.read(tag_key))
    end
    SyncedMemoryStore::Tagged.value(stored) if current
  end

  def divergences_of(peer, reads, l2_values, views)
    reads.filter_map do |key, (l1, read)|
      held = views[key]
      next if read == held && (l1.first == :miss || l1.last == l2_values[key])

      Divergence.new(key, peer, l1, read, held)
    end
  end
end
