// Names of the canonical error codes, as they appear in API error bodies.
#include "hwl/result.hpp"

namespace hwl {

std::string_view codeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid_argument";
    case Code::kNotFound:
      return "not_found";
    case Code::kAlreadyExists:
      return "already_exists";
    case Code::kConflict:
      return "conflict";
    case Code::kUnauthenticated:
      return "unauthenticated";
    case Code::kPermissionDenied:
      return "permission_denied";
    case Code::kResourceExhausted:
      return "resource_exhausted";
    case Code::kFailedPrecondition:
      return "failed_precondition";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kDeadlineExceeded:
      return "deadline_exceeded";
    case Code::kDataLoss:
      return "data_loss";
    case Code::kInternal:
      return "internal";
    case Code::kBadGateway:
      return "bad_gateway";
  }
  return "internal";
}

}  // namespace hwl
