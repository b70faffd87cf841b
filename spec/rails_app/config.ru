# frozen_string_literal: true

# The Rails application the Puma cluster spec (spec/integration/rails/puma_cluster_spec.rb)
# serves: `puma -C config/puma.rb` in this directory.
require_relative "config/environment"

run Rails.application
