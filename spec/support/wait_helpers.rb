# frozen_string_literal: true

# Waiting with a deadline: polls a condition until it holds or time runs out,
# so a spec waits only as long as it must and fails clearly when the
# condition never holds (never a blind sleep).
module WaitHelpers
  DEFAULT_TIMEOUT = 5

  def wait_until(timeout: DEFAULT_TIMEOUT, interval: 0.001, message: nil)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      result = yield
      return result if result
      raise(RSpec::Expectations::ExpectationNotMetError, message || "condition not met within #{timeout}s") if
        Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep interval
    end
  end
end

RSpec.configure { |config| config.include WaitHelpers }
