# frozen_string_literal: true

Rails.application.routes.draw do
  get "/pid", to: CacheEndpoints.new(:pid)
  get "/read", to: CacheEndpoints.new(:read)
  post "/write", to: CacheEndpoints.new(:write)
  post "/delete", to: CacheEndpoints.new(:delete)
  get "/fetch", to: CacheEndpoints.new(:fetch)
  get "/stats", to: CacheEndpoints.new(:stats)
  get "/events", to: CacheEndpoints.new(:events)
end
