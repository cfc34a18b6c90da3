// Caffe's own gradient checker (include/caffe/test/test_gradient_check_util.hpp) run on a Python
// loss layer that Caffe's layer factory creates, exactly as `caffe train` creates it from a
// prototxt: type "Python", python_param { module layer param_str }. The settings are those of
// Caffe's SigmoidCrossEntropyLoss test: GradientChecker<float>(1e-2, 1e-2), exhaustive over the
// one top value, checking bottom 0 only (the labels take no gradient).
//
//   python_loss_gradient_check CASES_FILE [--gtest_* flags]
//
// CASES_FILE holds one case per line, ten tab-separated fields:
//   name  module  layer  param_str  logits_shape  labels_shape  labels  ignore_label
//   ignore_fraction  seed
// shapes are written 2x3x4x5; labels is how bottom[1] is filled:
//   soft     uniform in [0, 1] (per-class targets, as Caffe's SigmoidCrossEntropyLoss test)
//   binary   0 or 1 with probability 1/2 (per-class targets)
//   indices  integers 0..C, C = logits axis 1 (class indices, 0 = background)
// ignore_label is an integer or "none"; each label entry becomes ignore_label with probability
// ignore_fraction. Logits are Gaussian (std 2) from Caffe's GaussianFiller; everything is drawn
// from Caffe's RNG seeded with seed, so a case is reproducible.
//
// Each case is one gtest test, Cases/PythonLossGradientCheck.Exhaustive/<line number from 0>,
// which prints the case's name when it starts and its loss and largest |gradient| at the end.
// Besides the checker's comparisons, a case fails unless that gradient is at least
// kMinLargestGradient.
#include <boost/python.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/filler.hpp"
#include "caffe/layer.hpp"
#include "caffe/layer_factory.hpp"
#include "caffe/test/test_gradient_check_util.hpp"
#include "caffe/util/math_functions.hpp"
#include "gtest/gtest.h"

namespace {

using caffe::Blob;
using caffe::Caffe;

const float kLogitStd = 2;  // moderate logits: some saturate, most do not
// Caffe's checker allows an error of 1e-2 * max(|gradient|, 1), an absolute 1e-2 below 1: a case
// whose gradients are all far below 1 (a large normalizer) would pass almost any gradient. Each
// case must have one large enough that an error of a few percent in it fails.
const float kMinLargestGradient = 0.5;

struct Case {
  std::string name, module, layer, param_str, labels;
  std::vector<int> logits_shape, labels_shape;
  bool has_ignore_label;
  int ignore_label;
  float ignore_fraction;
  unsigned int seed;
};

// gtest prints a test's parameter when the test fails.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  return parts;
}

std::vector<int> ParseShape(const std::string& text) {
  std::vector<int> shape;
  for (const std::string& dim : Split(text, 'x')) shape.push_back(std::stoi(dim));
  return shape;
}

std::vector<Case> ReadCases(const char* path) {
  std::ifstream file(path);
  CHECK(file) << "cannot read the cases file " << path;
  std::vector<Case> cases;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty()) continue;
    const std::vector<std::string> f = Split(line, '\t');
    CHECK_EQ(f.size(), 10u) << "a case needs 10 tab-separated fields: " << line;
    Case c;
    c.name = f[0];
    c.module = f[1];
    c.layer = f[2];
    c.param_str = f[3];
    c.logits_shape = ParseShape(f[4]);
    c.labels_shape = ParseShape(f[5]);
    c.labels = f[6];
    c.has_ignore_label = f[7] != "none";
    c.ignore_label = c.has_ignore_label ? std::stoi(f[7]) : 0;
    c.ignore_fraction = std::stof(f[8]);
    c.seed = std::stoul(f[9]);
    CHECK(c.labels == "soft" || c.labels == "binary" || c.labels == "indices")
        << "labels must be soft, binary or indices: " << line;
    cases.push_back(c);
  }
  CHECK(!cases.empty()) << "no cases in " << path;
  return cases;
}

// Filled by main before InitGoogleTest, which is when gtest instantiates the tests below.
std::vector<Case> g_cases;

void FillLabels(const Case& c, int num_classes, Blob<float>* labels) {
  const int n = labels->count();
  float* data = labels->mutable_cpu_data();
  if (c.labels == "binary") {
    std::vector<int> bits(n);
    caffe::caffe_rng_bernoulli(n, 0.5f, bits.data());
    for (int i = 0; i < n; ++i) data[i] = bits[i];
  } else {
    caffe::caffe_rng_uniform(n, 0.f, 1.f, data);
    if (c.labels == "indices") {
      for (int i = 0; i < n; ++i) {
        data[i] = std::min<float>(std::floor(data[i] * (num_classes + 1)), num_classes);
      }
    }
  }
  if (c.has_ignore_label && c.ignore_fraction > 0) {
    std::vector<int> ignored(n);
    caffe::caffe_rng_bernoulli(n, c.ignore_fraction, ignored.data());
    for (int i = 0; i < n; ++i) {
      if (ignored[i]) data[i] = c.ignore_label;
    }
  }
}

// The largest |d(2 loss)/d logit|, 2 being the loss weight the checker gives the top.
float LargestGradient(caffe::Layer<float>* layer, const std::vector<Blob<float>*>& bottom,
                      const std::vector<Blob<float>*>& top) {
  layer->Forward(bottom, top);
  top[0]->mutable_cpu_diff()[0] = 2;
  layer->Backward(top, std::vector<bool>{true, false}, bottom);
  float largest = 0;
  for (int i = 0; i < bottom[0]->count(); ++i) {
    largest = std::max(largest, std::fabs(bottom[0]->cpu_diff()[i]));
  }
  return largest;
}

class PythonLossGradientCheck : public ::testing::TestWithParam<Case> {};

TEST_P(PythonLossGradientCheck, Exhaustive) {
  const Case& c = GetParam();
  std::cout << "case " << c.name << ": " << c.module << "." << c.layer << " param_str "
            << c.param_str << std::endl;
  Caffe::set_mode(Caffe::CPU);
  Caffe::set_random_seed(c.seed);
  Blob<float> logits(c.logits_shape), labels(c.labels_shape), loss;
  caffe::FillerParameter filler_param;
  filler_param.set_std(kLogitStd);
  caffe::GaussianFiller<float>(filler_param).Fill(&logits);
  FillLabels(c, logits.shape(1), &labels);
  std::vector<Blob<float>*> bottom = {&logits, &labels}, top = {&loss};

  caffe::LayerParameter param;
  param.set_name("loss");
  param.set_type("Python");
  param.mutable_python_param()->set_module(c.module);
  param.mutable_python_param()->set_layer(c.layer);
  param.mutable_python_param()->set_param_str(c.param_str);
  try {
    boost::shared_ptr<caffe::Layer<float> > layer =
        caffe::LayerRegistry<float>::CreateLayer(param);
    caffe::GradientChecker<float> checker(1e-2, 1e-2);
    checker.CheckGradientExhaustive(layer.get(), bottom, top, 0);

    const float largest = LargestGradient(layer.get(), bottom, top);
    std::cout << "loss " << loss.cpu_data()[0] << ", largest |gradient| " << largest << std::endl;
    EXPECT_GE(largest, kMinLargestGradient) << "the case checks little: its gradients are tiny";
  } catch (const boost::python::error_already_set&) {
    PyErr_Print();  // the Python traceback, which would otherwise be lost
    FAIL() << "the Python layer raised an exception (traceback above)";
  }
}

INSTANTIATE_TEST_CASE_P(Cases, PythonLossGradientCheck, ::testing::ValuesIn(g_cases));

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::cerr << "usage: " << argv[0] << " CASES_FILE [--gtest_* flags]" << std::endl;
    return 2;
  }
  g_cases = ReadCases(argv[1]);
  argv[1] = argv[0];  // drop CASES_FILE, leaving gtest its flags
  --argc;
  ++argv;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
