// integerConv kernel alone, one thread: qk_i8_conv on a 3x3 stride-1 conv of C channels at HxH
// to M channels, 2-bit indices (0...3), ternary weights, on each path (0 portable, 1 AVX2, 2 VNNI).
// Build: clang -O2 -ISources/CKernels/include Benchmarks/int8_conv_bench.c Sources/CKernels/int8_conv.c -o /tmp/i8bench
// Run:   /tmp/i8bench 128 28 128
#include "int8_conv.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  long C=atol(argv[1]),H=atol(argv[2]),M=atol(argv[3]);
  qk_i8_shape s={C,H,H,3,3,1,1,1,1,1,1,H,H,M,0,3,0};
  s.maddubs_safe=qk_i8_maddubs_safe(3,1);
  long K=C*9, P=H*H;
  float*xf=malloc(sizeof(float)*C*H*H); for(long i=0;i<C*H*H;i++)xf[i]=rand()%4;
  unsigned char*x=malloc(C*H*H); qk_i8_levels(xf,C*H*H,3,x);
  int8_t*w=malloc(M*K); for(long i=0;i<M*K;i++)w[i]=(i%3)-1;
  int8_t*pw=malloc(qk_i8_packed_weight_bytes(&s)); qk_i8_pack_weights(&s,w,pw);
  float*y=malloc(sizeof(float)*M*P); float*sc=malloc(4*M),*b=calloc(M,4); for(int i=0;i<M;i++)sc[i]=0.01f;
  qk_i8_epilogue ep={sc,b,0,0,1e30f};
  for(int path=0;path<=2;path++){
    double best=1e9;
    for(int r=0;r<(path?10:2);r++){double t0=now(); qk_i8_conv(&s,x,pw,0,P,y,P,&ep,0,path); double t=now()-t0; if(t<best)best=t;}
    printf("C=%ld H=%ld M=%ld path %d: %.2f ms, %.1f GMAC/s\n",C,H,M,path,best*1e3,(double)M*K*P/best/1e9);
  }
}
