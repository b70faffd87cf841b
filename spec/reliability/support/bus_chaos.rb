# frozen_string_literal: true

require_relative "pacer"

# Takes the bus's redis-server away now and then, on a thread of its own,
# until #stop: either kills it (SIGKILL), then restarts it on the same port,
# or freezes it (SIGSTOP), then thaws it (SIGCONT). The gap between two
# outages is drawn from +gap+ and each outage's length from +down+ (seconds).
# The L2's redis-server is left alone: the soak's L2 faults come from
# FaultyRedisCacheStore.
class BusChaos
  attr_reader :kills, :pauses

  def initialize(server, rng:, gap:, down:)
    @server = server
    @rng = rng
    @gap = gap
    @down = down
    @kills = 0
    @pauses = 0
  end

  def start
    @pacer = Pacer.new
    @thread = Thread.new { run }
    self
  end

  # Ends the chaos and returns with the server running and answering (an
  # outage under way is cut short). Raises what the chaos thread raised.
  def stop
    @pacer&.stop!
    @thread&.value
    self
  end

  def to_s
    "bus redis-server killed #{kills} times, paused #{pauses} times"
  end

  private

  def run
    while @pacer.pace(@rng.rand(@gap))
      if @rng.rand < 0.5
        kill_and_restart
      else
        pause_and_resume
      end
    end
  end

  def kill_and_restart
    @server.kill
    @kills += 1
    @pacer.pace(@rng.rand(@down))
  ensure
    @server.start
  end

  def pause_and_resume
    @server.pause
    @pauses += 1
    @pacer.pace(@rng.rand(@down))
  ensure
    @server.resume
  end
end
