# frozen_string_literal: true

class PeerProcess
  # random_ops: a seeded mix of store operations over a few keys, for specs
  # that check that processes agree after arbitrary work.
  module RandomWork
    # Cumulative odds (out of 100) of each random operation.
    OPERATIONS = [[38, :write], [54, :delete], [82, :read], [89, :read_multi], [95, :write_multi],
                  [98, :delete_matched], [100, :clear]].freeze

    private

    # +count+ random operations over +keys+, driven by +seed+: writes, deletes,
    # reads (which fill L1 from L2), read_multi, write_multi, glob deletes and
    # clears. Values name this peer (+tag+) and the step. Returns a tally.
    def command_random_ops(seed:, count:, keys:, tag:)
      rng = Random.new(seed)
      tally = Hash.new(0)
      count.times do |step|
        operation = random_op(rng, store, keys, "#{tag}-#{step}")
        tally[operation] += 1
      end
      tally
    end

    def random_op(rng, cache, keys, value)
      roll = rng.rand(100)
      operation = OPERATIONS.find { |limit, _| roll < limit }.last
      key = keys.sample(random: rng)
      case operation
      when :write then cache.write(key, value)
      when :delete then cache.delete(key)
      when :read then cache.read(key)
      when :read_multi then cache.read_multi(*keys.sample(3, random: rng))
      when :write_multi then cache.write_multi(keys.sample(2, random: rng).to_h { |k| [k, "#{value}m"] })
      when :delete_matched then cache.delete_matched("k[0-3]")
      when :clear then cache.clear
      end
      operation
    end
  end
end
