// Precompiled header of net/: the heavy Asio/Beast headers, parsed once per build.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
