# frozen_string_literal: true

require "active_support"
require "active_support/cache"
require "active_support/notifications"
require "active_support/testing/time_helpers"
require "synced_memory_store"

Dir[File.join(__dir__, "support", "**", "*.rb")].each { |file| require file }

RSpec.configure do |config|
  config.example_status_persistence_file_path = ".rspec_status"
  config.disable_monkey_patching!
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.include ActiveSupport::Testing::TimeHelpers
  config.after { travel_back }
  config.order = :random
  Kernel.srand config.seed
end
