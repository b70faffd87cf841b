# frozen_string_literal: true

# Paces a chaos thread of the soak: #pace waits the given time (the chaos's
# own rhythm, not a way of waiting for anything) unless #stop! cuts it short,
# so that the end of the chaos never waits for a long gap to run out.
class Pacer
  def initialize
    @lock = Mutex.new
    @stopped_signal = ConditionVariable.new
    @stopped = false
  end

  # Waits +seconds+, or less if stopped meanwhile; returns whether it is
  # still running.
  def pace(seconds)
    deadline = monotonic + seconds
    @lock.synchronize do
      until @stopped
        left = deadline - monotonic
        break if left <= 0

        @stopped_signal.wait(@lock, left)
      end
      !@stopped
    end
  end

  def stop!
    @lock.synchronize do
      @stopped = true
      @stopped_signal.broadcast
    end
  end

  def stopped?
    @lock.synchronize { @stopped }
  end

  private

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
