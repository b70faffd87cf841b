# frozen_string_literal: true

class PeerProcess
  # fetch with a block that raises (a backend that is down), for the
  # fail-safe specs: what the caller got, a value or an error.
  module FailingFetch
    private

    # [:value, v] when the fetch returned v, [:error, message] when it raised.
    def command_fetch_failing(name, options)
      [:value, store.fetch(name, options) { raise "the backend is down" }]
    rescue StandardError => e
      [:error, e.message]
    end
  end
end
