# frozen_string_literal: true

require_relative "pacer"

# Ends and restarts the soak's processes now and then, on a thread of its
# own, until #stop: at gaps drawn from +gap+ (seconds) it picks a live
# process and, by the odds in +actions+, closes and reopens its store
# (:reopen), makes it exit (:exit, SIGTERM) or kills it (:kill, SIGKILL);
# the Fleet replaces a process that ends.
class ProcessChaos
  ACTIONS = { reopen: :reopen_store, exit: :exit_process, kill: :kill_process }.freeze

  def initialize(fleet, rng:, gap:, actions:)
    @fleet = fleet
    @rng = rng
    @gap = gap
    @choices = actions.flat_map { |action, odds| [ACTIONS.fetch(action)] * odds }
    @pacer = Pacer.new
  end

  def start
    @thread = Thread.new { run }
    self
  end

  # Ends the chaos once the action under way (a replacement starting, say)
  # is done. Raises what the chaos thread raised.
  def stop
    @pacer.stop!
    @thread&.value
    self
  end

  private

  def run
    while @pacer.pace(@rng.rand(@gap))
      action = @choices.sample(random: @rng)
      @fleet.public_send(action, @fleet.peers.sample(random: @rng))
    end
  end
end
